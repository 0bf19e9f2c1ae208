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
  /** Set when the dead letter carries only the start of the original value: the original's size in bytes. */
  valueBytes: 'x-dlq-value-bytes',
  /** With `valueBytes`: the SHA-256 (hex) of the whole original value. */
  valueSha256: 'x-dlq-value-sha256',
  /** Set when the original message's headers were left out (too large): how many there were. */
  headersDropped: 'x-dlq-headers-dropped',
} as const;
