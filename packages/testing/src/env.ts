import { randomBytes } from 'node:crypto';

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run tests through vitest (its global setup starts the infrastructure)`);
  return v;
}

/** A short unique id for names of test databases, topic prefixes and subjects. */
export function uniqueId(label = 't'): string {
  return `${label}${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
}

/** A new run id (`r` + time + random). */
export function newTestRun(): string {
  return `r${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
}

/**
 * The id of this test run (`PIPP_TEST_RUN`, set by the global setup). Every topic and database a test
 * creates carries it, so the run's teardown can delete all of them however the tests end; a broker
 * that keeps every test's topics runs out of file handles (measured: ~20,000 partitions). Outside
 * vitest (benchmark scripts) a run id is made here, and the script removes what it created.
 */
export function testRun(): string {
  process.env.PIPP_TEST_RUN ??= newTestRun();
  return process.env.PIPP_TEST_RUN;
}

/** Names a test environment's topics and databases start with (what the run's teardown deletes). */
export function runPrefixes(run = testRun()) {
  return { topics: `t.${run}.`, databases: `t_${run}_` };
}

/**
 * An environment for one service under test, isolated from every other test by its own database and
 * topic prefix, on the shared real infrastructure. Logs are silent unless TEST_LOG_LEVEL is set.
 */
export function isolatedEnv(service: string, extra: Record<string, string> = {}): Record<string, string> {
  const id = uniqueId();
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    HOST: '127.0.0.1',
    PORT: '0',
    MONGO_URL: required('MONGO_URL'),
    MONGO_DB: `${runPrefixes().databases}${service.replace(/[^A-Za-z0-9]/g, '')}_${id}`.slice(0, 63),
    KAFKA_BROKERS: required('KAFKA_BROKERS'),
    KAFKA_TOPIC_PREFIX: `${runPrefixes().topics}${id}.`,
    // One partition per topic: tests need ordering, not parallelism, and the broker's file handles are finite.
    KAFKA_PARTITIONS: '1',
    OUTBOX_POLL_MS: '100',
    CONSUMER_BACKOFF_MS: '20',
    SHUTDOWN_TIMEOUT_MS: '5000',
    ...extra,
  };
}

/** Polls fn until it returns a truthy value (returned) or timeoutMs passes (throws with `what`). */
export async function waitFor<T>(fn: () => Promise<T> | T, opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${opts.what ?? 'condition'}${last ? `: ${(last as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}
