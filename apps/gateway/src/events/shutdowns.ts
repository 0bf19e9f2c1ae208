import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/**
 * Consumes `privacy.function.shutdown` (policy 2.4.2(5): "promptly stop the activities to continue
 * collecting your personal information"): the gateway records each shut-down function and from its
 * `effectiveAt` refuses requests that would collect data for it (POST, PUT, PATCH on routes whose
 * service declares `x-pipp-function`) with 403 citing 2.4.2(5) (see routes/proxy). Reading and
 * deleting one's data stay possible; the services refuse again themselves. Idempotent.
 */
export const shutdownEventsPlugin = fp(async function shutdownEvents(app: FastifyInstance) {
  app.kafka.consume({
    name: 'function-shutdowns',
    handlers: {
      'privacy.function.shutdown': async (event) => app.shutdowns.record(event.payload),
    },
  });
}, { name: 'gateway-shutdown-events', dependencies: ['gateway-shutdowns'] });
