import type { Channel } from '@pipp/contracts';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { pseudonymOf } from '../domain/erasure.js';

/**
 * The contact directory (policy 5.4.2): identity's `privacy.subject.contact-changed` events, kept only
 * while the subject exists. An event older than what is stored is ignored (out-of-order delivery);
 * events for a subject whose data was erased are ignored (no resurrection after the saga).
 */
export function registerContactConsumer(app: FastifyInstance, config: Config) {
  app.kafka.consume({
    name: 'contacts',
    handlers: {
      /**
       * Consent to purpose `notifications` (policy 2.1.1, 5.4.2): the latest grant or withdrawal per
       * subject; a withdrawal opts the subject out of general notices. The later consent record wins (a
       * replayed older one changes nothing).
       */
      'privacy.consent.changed': async (event) => {
        const p = event.payload;
        if (p.purpose !== 'notifications' || p.scope) return;
        if (await app.models.erased.exists({ _id: pseudonymOf(p.subjectId, config.INCIDENT_PSEUDONYM_KEY) })) return;
        const at = new Date(p.at);
        const set = { at, recordId: p.recordId, withdrawn: p.state === 'withdrawn' };
        const newer = await app.models.optOuts.updateOne({ _id: p.subjectId, at: { $lte: at } }, { $set: set });
        if (newer.matchedCount) return;
        await app.models.optOuts.create({ _id: p.subjectId, ...set }).catch((err: { code?: number }) => {
          if (err.code !== 11000) throw err; // a later record is already stored
        });
      },
      'privacy.subject.contact-changed': async (event) => {
        const p = event.payload;
        if (await app.models.erased.exists({ _id: pseudonymOf(p.subjectId, config.INCIDENT_PSEUDONYM_KEY) })) return;
        const sourceAt = new Date(event.occurredAt);
        const channels = Object.fromEntries(Object.entries(p.channels).filter(([, v]) => typeof v === 'string' && v.trim()));
        const set = { channels, preferred: (p.preferred ?? []) as Channel[], sourceAt, updatedAt: new Date() };
        const updated = await app.models.contacts.updateOne({ _id: p.subjectId, sourceAt: { $lte: sourceAt } }, { $set: set });
        if (updated.matchedCount) return;
        await app.models.contacts.create({ _id: p.subjectId, ...set }).catch((err: { code?: number }) => {
          if (err.code !== 11000) throw err; // a newer event is already stored
        });
      },
    },
  });
}
