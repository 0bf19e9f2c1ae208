import { up } from '@pipp/infra';
import { Kafka, logLevel } from 'kafkajs';
import { MongoClient } from 'mongodb';
import { newTestRun, runPrefixes } from './env.js';

/**
 * Vitest global setup shared by every package: integration tests talk to the real Kafka broker and
 * the MongoDB wire protocol. When MONGO_URL and KAFKA_BROKERS are set (an external deployment, or
 * `make test`, which starts the test profile itself) they are used as they are; otherwise the local
 * `test` profile (Kafka 19092, FerretDB 27018) is started or reused and left running for the next
 * run (`node infra/cli.mjs down test` stops it).
 *
 * It also names the run (`PIPP_TEST_RUN`): every topic and database tests create carries the run id,
 * and the teardown deletes them all (PIPP_KEEP_TEST_DATA=1 keeps them for inspection).
 */
export default async function setup(): Promise<() => Promise<void>> {
  process.env.PIPP_TEST_RUN ??= newTestRun();
  if (!process.env.MONGO_URL || !process.env.KAFKA_BROKERS) {
    const env = await up('test');
    process.env.MONGO_URL = env.MONGO_URL;
    process.env.KAFKA_BROKERS = env.KAFKA_BROKERS;
    if (env.started.length) {
      process.stderr.write(`[testing] started ${env.started.join(', ')} (test profile); left running, stop with: node infra/cli.mjs down test\n`);
    }
  }
  return async () => {
    if (process.env.PIPP_KEEP_TEST_DATA === '1') return;
    await removeRunData(process.env.PIPP_TEST_RUN!);
  };
}

/** Deletes every topic and database of a test run. Best effort: a broker or server that is down is left alone. */
export async function removeRunData(run: string): Promise<void> {
  const prefixes = runPrefixes(run);
  const admin = new Kafka({ clientId: 'pipp-test-teardown', brokers: process.env.KAFKA_BROKERS!.split(','), logLevel: logLevel.NOTHING, retry: { retries: 2 } }).admin();
  try {
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefixes.topics));
    for (let i = 0; i < topics.length; i += 200) await admin.deleteTopics({ topics: topics.slice(i, i + 200), timeout: 30_000 });
  } catch (err) {
    process.stderr.write(`[testing] could not delete the run's topics: ${(err as Error).message}\n`);
  } finally {
    await admin.disconnect().catch(() => {});
  }
  const client = new MongoClient(process.env.MONGO_URL!, { serverSelectionTimeoutMS: 5000 });
  try {
    await client.connect();
    const { databases } = await client.db('admin').admin().listDatabases({ nameOnly: true });
    for (const { name } of databases) if (name.startsWith(prefixes.databases)) await client.db(name).dropDatabase();
  } catch (err) {
    process.stderr.write(`[testing] could not drop the run's databases: ${(err as Error).message}\n`);
  } finally {
    await client.close().catch(() => {});
  }
}
