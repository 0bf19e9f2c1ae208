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
