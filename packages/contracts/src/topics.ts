import type { EventType } from './events/index.js';

/**
 * The topic an event type is published on: the type itself, behind the deployment's prefix
 * (config `KAFKA_TOPIC_PREFIX`, empty by default; tests use a unique prefix to stay isolated).
 */
export function topicFor(type: EventType, prefix = ''): string {
  return `${prefix}${type}`;
}

/** Where messages that fail validation or processing go, with the reason in their headers. */
export function deadLetterTopicFor(topic: string): string {
  return `${topic}.dlq`;
}

/** Headers of a dead-lettered message. */
export const DLQ_HEADERS = {
  reason: 'x-dlq-reason',
  attempts: 'x-dlq-attempts',
  sourceTopic: 'x-dlq-source-topic',
  sourcePartition: 'x-dlq-source-partition',
  sourceOffset: 'x-dlq-source-offset',
  consumerGroup: 'x-dlq-consumer-group',
  at: 'x-dlq-at',
} as const;
