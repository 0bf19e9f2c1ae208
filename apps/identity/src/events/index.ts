import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../config.js';
import type { KeyRing } from '../plugins/keys.js';
import { erasureDeletions, handleErasure } from './erasure.js';
import { handleSweep } from './sweep.js';

/**
 * identity's consumers (idempotent, dead-lettering, through the kit):
 * - `privacy.policy.published` → the current version of each policy document (registration
 *   acknowledges it, preamble);
 * - `privacy.consent.changed` → a withdrawn `personalization` consent deletes the subject's activity
 *   log (policy 2.4.1(2), 2.1.2; PIPL art. 47(1)(3): delete when consent is withdrawn);
 * - `privacy.function.shutdown` → stop collecting for that function at once (policy 2.4.2(5));
 * - `privacy.erasure.requested` → the erasure participant (events/erasure.ts);
 * - `privacy.retention.sweep-requested` → the retention sweep participant (events/sweep.ts).
 */
export const identityEvents = fp(async function events(app: FastifyInstance, _opts: { config: Config; keys: KeyRing }) {
  const m = app.models;
  app.kafka.consume({
    name: 'policy',
    handlers: {
      'privacy.policy.published': async (event) => {
        const { documentId, version, effectiveAt } = event.payload;
        // Only ever moves forward: an older publication delivered late changes nothing.
        await m.policyVersions.updateOne({ _id: documentId, version: { $lt: version } }, { $set: { version, publishedAt: new Date(effectiveAt) } });
        await m.policyVersions.updateOne({ _id: documentId }, { $setOnInsert: { version, publishedAt: new Date(effectiveAt) } }, { upsert: true })
          .catch((err: { code?: number }) => { if (err.code !== 11000) throw err; });
      },
    },
  });
  app.kafka.consume({
    name: 'consent',
    handlers: {
      'privacy.consent.changed': async (event) => {
        const { subjectId, purpose, state } = event.payload;
        if (purpose !== 'personalization' || state !== 'withdrawn') return;
        const res = await m.activity.deleteMany({ subjectId });
        if (res.deletedCount) await app.audit.record(null, subjectId, 'activity-deleted:consent-withdrawn', ['activity-log']);
      },
      'privacy.function.shutdown': async (event) => {
        const { functionId, shutdownId, effectiveAt, title } = event.payload;
        await m.shutdowns.updateOne({ _id: functionId }, { $set: { shutdownId, effectiveAt: new Date(effectiveAt), title } }, { upsert: true });
      },
    },
  });
  const deletions = erasureDeletions(app);
  app.kafka.consume({
    name: 'erasure',
    // 16 keys at once (each subject's events in order); the erasures in hand delete from each
    // collection together.
    keyConcurrency: 16,
    // An erasure is answered from its own record per request id (a repeat gets the same reply).
    idempotent: ['privacy.erasure.requested'],
    handlers: {
      'privacy.erasure.requested': async (event) => handleErasure(app, event, deletions),
      'privacy.retention.sweep-requested': async (event) => handleSweep(app, event),
    },
  });
}, { name: 'identity-events', dependencies: ['identity-models', 'identity-sessions', 'identity-audit'] });
