import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';

/** Subjects whose events one partition's batch handles at once (orchestrator and participant). */
export const KEY_CONCURRENCY = 16;

/**
 * The orchestrator's consumer: participants' replies to erasures and sweeps, and the services'
 * data-residency declarations. Each handler is idempotent by state (a repeat changes nothing), so the
 * kit's per-event dedupe record is skipped here (it would cost two more database round trips per
 * reply); one subject's replies stay in order; partitions, and subjects within a partition, are handled
 * in parallel; the replies about one subject that arrive in one batch are applied together (one read
 * and one write of the request instead of one each per reply).
 */
export function registerOrchestrator(app: FastifyInstance, config: Config) {
  app.kafka.consume({
    name: 'orchestrator',
    dedupe: false,
    partitionsConsumedConcurrently: config.KAFKA_PARTITIONS,
    // Replies of different subjects (different requests) are applied in parallel; one subject's stay in order.
    keyConcurrency: KEY_CONCURRENCY,
    handlers: {
      'privacy.erasure.participant-replied': async (event) => app.erasures.applyReplies([event.payload]),
      'privacy.retention.sweep-replied': async (event) => app.sweeps.applyReply(event.payload),
      'privacy.residency.declared': async (event) => app.residencyReport.record(event.payload),
    },
    batchHandlers: {
      'privacy.erasure.participant-replied': async (events) => app.erasures.applyReplies(events.map((e) => e.payload)),
    },
  });
}
