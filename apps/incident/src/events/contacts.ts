import type { Channel } from '@pipp/contracts';
import { storeIfNewer } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { pseudonymOf } from '../domain/erasure.js';

/**
 * The contact directory (policy 5.4.2): identity's `privacy.subject.contact-changed` events, kept only
 * while the subject exists. An event older than what is stored is ignored (out-of-order delivery);
 * events for a subject whose data was erased are ignored (no resurrection after the saga).
 */
export function registerContactConsumer(app: FastifyInstance, config: Config) {
  const erased = async (subjectId: string) => !!await app.models.erased.exists({ _id: pseudonymOf(subjectId, config.INCIDENT_PSEUDONYM_KEY) });
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
        if (p.purpose !== 'notifications' || p.scope || await erased(p.subjectId)) return;
        const at = new Date(p.at);
        await storeIfNewer(app.models.optOuts, p.subjectId, 'at', { at, recordId: p.recordId, withdrawn: p.state === 'withdrawn' });
      },
      'privacy.subject.contact-changed': async (event) => {
        const p = event.payload;
        if (await erased(p.subjectId)) return;
        const sourceAt = new Date(event.occurredAt);
        const channels = Object.fromEntries(Object.entries(p.channels).filter(([, v]) => typeof v === 'string' && v.trim()));
        await storeIfNewer(app.models.contacts, p.subjectId, 'sourceAt', { channels, preferred: (p.preferred ?? []) as Channel[], sourceAt, updatedAt: new Date() });
      },
    },
  });
}
