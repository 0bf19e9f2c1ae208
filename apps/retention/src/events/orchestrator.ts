import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';

/**
 * The orchestrator's consumer: participants' replies to erasures and sweeps, and the services'
 * data-residency declarations. Each handler is idempotent by state (a repeat changes nothing), so the
 * kit's per-event dedupe record is skipped here (it would cost two more database round trips per
 * reply); one subject's replies stay in order on their partition, partitions are handled in parallel.
 */
export function registerOrchestrator(app: FastifyInstance, config: Config) {
  app.kafka.consume({
    name: 'orchestrator',
    dedupe: false,
    partitionsConsumedConcurrently: config.KAFKA_PARTITIONS,
    handlers: {
      'privacy.erasure.participant-replied': async (event) => app.erasures.applyReply(event.payload),
      'privacy.retention.sweep-replied': async (event) => app.sweeps.applyReply(event.payload),
      'privacy.residency.declared': async (event) => app.residencyReport.record(event.payload),
    },
  });
}
