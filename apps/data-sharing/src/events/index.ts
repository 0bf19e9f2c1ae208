import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { erasureLookups, handleErasureRequested, replyToSaga } from './erasure.js';
import { handleSweep, purgeExpiredHolds } from './sweep.js';

const HOUR = 3_600_000;

/**
 * The service's consumers:
 * - `privacy.erasure.requested` → its part of the erasure saga (policy 4.1, 4.2);
 * - `privacy.retention.sweep-requested` → retention periods (policy 5.1);
 * - `privacy.function.shutdown` → no new data for that function from its effective time (2.4.2(5)).
 * Also: acknowledged deletion notices re-reply to the saga, and records kept by law are purged hourly
 * once their purge date passes.
 */
export const eventsPlugin = fp(async function events(app: FastifyInstance) {
  const lookups = erasureLookups(app);
  app.kafka.consume({
    name: 'saga',
    // Partitions and 16 keys at once (each subject's events in order; sweeps and shutdowns have keys
    // of their own); the erasures in hand find the subjects' documents together (one query per
    // collection).
    partitionsConsumedConcurrently: 4,
    keyConcurrency: 16,
    // An erasure is answered from its own record per request id (a repeat gets the same reply).
    idempotent: ['privacy.erasure.requested'],
    handlers: {
      'privacy.erasure.requested': async (event) => handleErasureRequested(app, event, lookups),
      'privacy.retention.sweep-requested': async (event) => handleSweep(app, event),
      'privacy.function.shutdown': async (event) => {
        const p = event.payload;
        await app.models.shutdowns.updateOne(
          { _id: p.functionId },
          { $set: { shutdownId: p.shutdownId, title: p.title, effectiveAt: new Date(p.effectiveAt) } },
          { upsert: true },
        );
      },
    },
  });
  app.notices.onClosed(async (notice) => replyToSaga(app, notice.requestId, { force: false }));

  let timer: NodeJS.Timeout | undefined;
  const purge = async () => {
    try {
      const n = await purgeExpiredHolds(app);
      if (n) app.log.info({ purged: n }, 'records kept by law purged after their purge date');
    } catch (err) {
      app.log.warn({ err }, 'purge of expired holds failed; will retry');
    }
  };
  app.addHook('onReady', async () => {
    void purge();
    timer = setInterval(() => void purge(), HOUR);
    timer.unref();
  });
  app.addHook('preClose', async () => { if (timer) clearInterval(timer); });
}, { name: 'pipp-ds-events', dependencies: ['pipp-ds-models', 'pipp-ds-notices', 'pipp-ds-erased-subjects'] });
