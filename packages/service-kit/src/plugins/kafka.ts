import {
  deadLetterTopicFor, eventDefinition, topicFor, type EventType, type ServiceName,
} from '@pipp/contracts';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Kafka, logLevel, Partitioners, type Admin, type Producer } from 'kafkajs';
import { randomUUID } from 'node:crypto';
import { ManagedConsumer, type ConsumerOptions } from '../consumer.js';
import { withTimeout } from './mongo.js';

export interface KafkaOptions {
  service: ServiceName;
  brokers: string[];
  topicPrefix: string;
  partitions: number;
  replicationFactor: number;
  /** Event types this service produces or consumes: their topics (and DLQs) are created at start-up. */
  topics: EventType[];
  consumerDefaults: { maxAttempts: number; backoffMs: number };
}

/** `app.kafka`: the service's Kafka client, producer and consumers. */
export interface KafkaHandle {
  client: Kafka;
  /** Idempotent producer, acks=all. Services publish through `app.outbox`, not directly. */
  producer: Producer;
  admin: Admin;
  /** The topic of an event type in this deployment (with its prefix). */
  topic(type: EventType): string;
  /**
   * Declares a consumer; it starts when the app is ready and stops (committing what it finished) on
   * close. Its topics are created if missing.
   */
  consume(opts: ConsumerOptions): ManagedConsumer;
  /** Resolves when the broker answers a metadata request within timeoutMs. */
  ping(timeoutMs?: number): Promise<void>;
  /** Group ids of consumers that crashed and will not restart (for /readyz). */
  failedConsumers(): string[];
  /**
   * Stops every consumer (each finishes and commits what it has in hand); idempotent. Runs on close
   * before the producer disconnects; the infrastructure plugin calls it before stopping the outbox, so
   * that what the consumers' last messages wrote is published too.
   */
  stopConsumers(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    kafka: KafkaHandle;
  }
}

/**
 * Routes kafkajs logs into the service's pino logger. kafkajs logs every error response of the
 * protocol at ERROR, also the retriable ones it then retries itself (a coordinator still loading, a
 * new topic's metadata not yet propagated); those go to debug. Failures that matter surface as
 * thrown errors and consumer crashes, which the kit logs.
 */
function logCreator(log: FastifyBaseLogger) {
  return () => ({ level, log: entry }: { level: logLevel; log: { message: string } & Record<string, unknown> }) => {
    const { message, timestamp: _t, logger: _l, ...rest } = entry;
    const fields = { kafkajs: rest };
    if (level === logLevel.ERROR && message.startsWith('Response ')) log.debug(fields, message);
    else if (level === logLevel.ERROR) log.error(fields, message);
    else if (level === logLevel.WARN) log.warn(fields, message);
    else if (level === logLevel.INFO) log.debug(fields, message);
    else log.trace(fields, message);
  };
}

/**
 * Creates the topics of the given event types (and their dead-letter topics) that do not exist yet,
 * with the configured partitions and each event's topic settings, then waits until the broker's
 * metadata shows every one with a leader for each partition. Safe to race with other services.
 * kafkajs' own `waitForLeaders` rethrows the UNKNOWN_TOPIC_OR_PARTITION a KRaft broker answers while
 * a new topic's metadata propagates (seen under load), so the wait is done here, retrying retriable
 * errors for up to 60 s.
 */
export async function ensureTopics(admin: Admin, names: { topic: string; config?: Record<string, string>; partitions?: number }[], partitions: number, replicationFactor: number) {
  const existing = new Set(await admin.listTopics());
  const missing = names.filter((n) => !existing.has(n.topic));
  if (missing.length) {
    try {
      await admin.createTopics({
        waitForLeaders: false,
        topics: missing.map((n) => ({
          topic: n.topic,
          numPartitions: n.partitions ?? partitions,
          replicationFactor,
          configEntries: Object.entries(n.config ?? {}).map(([name, value]) => ({ name, value })),
        })),
      });
    } catch (err) {
      // Another service may have created some of them in between (TOPIC_ALREADY_EXISTS): the wait
      // below tells whether they all exist now.
      if (!/already exists/i.test(String((err as Error).message)) && !(err as { retriable?: boolean }).retriable) throw err;
    }
  }
  const topics = names.map((n) => n.topic);
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const { topics: found } = await admin.fetchTopicMetadata({ topics });
      if (found.length === topics.length && found.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
    } catch (err) {
      if (!(err as { retriable?: boolean }).retriable) throw err;
    }
    if (Date.now() > deadline) throw new Error(`Kafka topics not ready within 60 s: ${topics.join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Connects the service to Kafka (kafkajs 2.2): producer, admin, topics, managed consumers. */
export const kafkaPlugin = fp(async function kafka(app: FastifyInstance, opts: KafkaOptions) {
  const client = new Kafka({
    clientId: `pipp-${opts.service}`,
    brokers: opts.brokers,
    logLevel: logLevel.WARN,
    logCreator: logCreator(app.log.child({ component: 'kafkajs' })),
    connectionTimeout: 3000,
    requestTimeout: 30_000,
    retry: { initialRetryTime: 100, retries: 8, maxRetryTime: 5000 },
  });
  // Idempotent (one request in flight, acks=all, unlimited retries): a send waits out a broker outage
  // rather than reordering or duplicating one subject's events.
  const producer = client.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 5000 },
  });
  const admin = client.admin();
  // A separate admin without retries for health probes, so /readyz answers promptly during outages.
  const probe = new Kafka({
    clientId: `pipp-${opts.service}-probe`, brokers: opts.brokers, logLevel: logLevel.NOTHING,
    connectionTimeout: 1000, requestTimeout: 1500, retry: { retries: 0 },
  }).admin();
  await Promise.all([producer.connect(), admin.connect()]);

  const topic = (type: EventType) => topicFor(type, opts.topicPrefix);
  const topicSpecs = (types: EventType[], withDlq: boolean) => types.flatMap((t) => {
    const spec = { topic: topic(t), config: eventDefinition(t).topicConfig };
    return withDlq ? [spec, { topic: deadLetterTopicFor(spec.topic) }] : [spec];
  });
  await ensureTopics(admin, topicSpecs(opts.topics, true), opts.partitions, opts.replicationFactor);

  const consumers: ManagedConsumer[] = [];
  let consumersStopped: Promise<void> | undefined;
  let ready = false;
  app.decorate('kafka', {
    client,
    producer,
    admin,
    topic,
    consume(consumerOpts: ConsumerOptions) {
      const groupId = `${opts.topicPrefix}${opts.service}.${consumerOpts.name}${consumerOpts.broadcast ? `.${randomUUID()}` : ''}`;
      const processed = app.mongo?.connection.collection('processed_events');
      if (!processed && consumerOpts.dedupe !== false) throw new Error(`consumer ${consumerOpts.name}: dedupe needs app.mongo`);
      const consumer = new ManagedConsumer({
        kafka: client, producer, topicOf: topic, groupId, processed: processed!, log: app.log.child({ consumer: consumerOpts.name }),
        defaults: opts.consumerDefaults,
      }, consumerOpts);
      if (ready) throw new Error('declare consumers before the app is ready');
      consumers.push(consumer);
      return consumer;
    },
    async ping(timeoutMs = 1500) {
      await withTimeout((async () => {
        await probe.connect();
        const cluster = await probe.describeCluster();
        if (!cluster.brokers.length) throw new Error('no brokers');
      })(), timeoutMs, 'Kafka metadata request');
    },
    failedConsumers: () => consumers.filter((c) => c.failure).map((c) => c.groupId),
    stopConsumers: () => (consumersStopped ??= Promise.all(consumers.map((c) => c.stop())).then(() => undefined)),
  } satisfies KafkaHandle);

  app.addHook('onReady', async () => {
    ready = true;
    const consumed = new Set(consumers.flatMap((c) => c.types));
    await ensureTopics(admin, topicSpecs([...consumed], true), opts.partitions, opts.replicationFactor);
    await Promise.all(consumers.map((c) => c.start()));
  });
  app.addHook('onClose', async () => {
    await app.kafka.stopConsumers();
    await Promise.allSettled([producer.disconnect(), admin.disconnect(), probe.disconnect()]);
  });
}, { name: 'pipp-kafka' });

