import { CompressionTypes, Kafka, logLevel, type IHeaders } from 'kafkajs';
import { randomUUID } from 'node:crypto';

export interface CollectedMessage {
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
  partition: number;
  offset: string;
}

function client(brokers = process.env.KAFKA_BROKERS ?? '') {
  return new Kafka({ clientId: 'pipp-test', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
}

const headersOf = (h: IHeaders | undefined) => Object.fromEntries(Object.entries(h ?? {}).map(([k, v]) => [k, String(v)]));

/**
 * Reads a topic from the beginning (with a throwaway consumer group) until `until(messages)` holds,
 * then returns what it read. Throws after timeoutMs with how many messages it saw.
 */
export async function collectMessages(topic: string, until: (msgs: CollectedMessage[]) => boolean, timeoutMs = 20_000): Promise<CollectedMessage[]> {
  const consumer = client().consumer({ groupId: `test-reader-${randomUUID()}`, maxWaitTimeInMs: 100 });
  const seen: CollectedMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let done!: () => void;
    const finished = new Promise<void>((r) => { done = r; });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        seen.push({ key: message.key?.toString() ?? null, value: message.value?.toString() ?? null, headers: headersOf(message.headers), partition, offset: message.offset });
        if (until(seen)) done();
      },
    });
    if (until(seen)) return seen;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      finished,
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out reading ${topic}: ${seen.length} message(s) seen`)), timeoutMs); }),
    ]).finally(() => clearTimeout(timer));
    return seen;
  } finally {
    await consumer.disconnect();
  }
}

/** Produces raw messages (e.g. malformed ones) straight to a topic; `gzip` compresses the batch. */
export async function produceRaw(topic: string, messages: { key?: string; value: string; headers?: Record<string, string> }[], opts: { gzip?: boolean } = {}): Promise<void> {
  const producer = client().producer();
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages, ...(opts.gzip ? { compression: CompressionTypes.GZIP } : {}) });
  } finally {
    await producer.disconnect();
  }
}

/**
 * Deletes every topic whose name starts with `prefix` (a test's KAFKA_TOPIC_PREFIX), DLQs included.
 * Call it in afterAll with dropDatabase: each test environment creates a topic (and a DLQ) per event
 * type, and a shared broker that keeps them all runs out of file handles (measured: ~20,000
 * partition directories reached the broker's open-files limit of 20,000 and it stopped accepting
 * connections). Never throws; a broker that is down is left alone.
 */
export async function dropTopics(prefix: string, brokers = process.env.KAFKA_BROKERS ?? ''): Promise<number> {
  if (!prefix) return 0;
  const admin = new Kafka({ clientId: 'pipp-test-cleanup', brokers: brokers.split(','), logLevel: logLevel.NOTHING, retry: { retries: 1 } }).admin();
  try {
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length) await admin.deleteTopics({ topics, timeout: 10_000 });
    return topics.length;
  } catch {
    return 0;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
