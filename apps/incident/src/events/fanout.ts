import type { FastifyInstance } from 'fastify';

/**
 * The incident service's own fan-out stages (policy 5.4.2): the planner pages through a notification's
 * audience; the batch consumer turns each page into deliveries. Batch events are keyed by their event
 * id, so they spread over partitions and are processed in parallel.
 */
export function registerFanoutConsumers(app: FastifyInstance) {
  app.kafka.consume({
    name: 'fanout-planner',
    handlers: {
      'privacy.notification.fanout-requested': async (event) => app.notifier.plan(event.payload.notificationId),
    },
  });
  app.kafka.consume({
    name: 'fanout-batches',
    partitionsConsumedConcurrently: 1,
    handlers: {
      'privacy.notification.batch-ready': async (event) => app.notifier.materialize(event.payload),
    },
  });
}
