import { up } from '@pipp/infra';

/**
 * Vitest global setup shared by every package: integration tests talk to the real Kafka broker and
 * the MongoDB wire protocol. When MONGO_URL and KAFKA_BROKERS are set (an external deployment, or
 * `make test`, which starts the test profile itself) they are used as they are; otherwise the local
 * `test` profile (Kafka 19092, FerretDB 27018) is started or reused and left running for the next
 * run (`npm run infra -- down test` stops it).
 */
export default async function setup(): Promise<void> {
  if (process.env.MONGO_URL && process.env.KAFKA_BROKERS) return;
  const env = await up('test');
  process.env.MONGO_URL = env.MONGO_URL;
  process.env.KAFKA_BROKERS = env.KAFKA_BROKERS;
  if (env.started.length) {
    process.stderr.write(`[testing] started ${env.started.join(', ')} (test profile); left running, stop with: npm run infra -- down test\n`);
  }
}
