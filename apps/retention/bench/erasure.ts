// Benchmark: erasure of N subjects (default 1,000) across all participants, through the real service
// (HTTP → outbox → Kafka → participants → replies → completion), next to the raw kafkajs
// produce→consume round trip measured in the same run on the same broker.
//
//   MONGO_URL=mongodb://127.0.0.1:27018 KAFKA_BROKERS=127.0.0.1:19092 npx tsx apps/retention/bench/erasure.ts [--subjects 1000] [--participants real|simulated]
//
// Prints figures (requests/s, p50/p95 completion in ms) and ratios; the target is 10,000 subjects in
// ≤ 60 s (≥ 167 completed erasures/s). `--participants real` (the default; build first: npx turbo run
// build) runs identity, consent, data-sharing, incident and retention as their built processes
// (RunningSystem), with every subject registered first (identity's `privacy.subject.registered`
// event, so consent holds a ledger for each); `simulated` runs retention in this process and the other
// four as one process replying `completed` on the broker, to measure the orchestrator alone
// (`BENCH_DB_PROFILE=1`, in either mode, prints each service's database time by command shape).
import { SERVICES, createEvent, type ServiceName } from '@pipp/contracts';
import { RunningSystem, TestAuthority, dropDatabase, dropTopics, isolatedEnv, percentile as pct, produceRaw, uniqueId } from '@pipp/testing';
import { loadConfig } from '@pipp/service-kit';
import { Kafka, logLevel } from 'kafkajs';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
// @ts-expect-error a plain ES module of the benchmark (it is also preloaded into the service processes)
import { profileCommands } from './db-profile.mjs';
import { buildApp } from '../src/app.js';
import { ConfigSchema } from '../src/config.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const N = arg('subjects', 1000);
const CONCURRENCY = arg('concurrency', 8);
const MODE = (() => {
  const i = process.argv.indexOf('--participants');
  const m = i > 0 ? process.argv[i + 1] : 'real';
  if (m !== 'real' && m !== 'simulated') throw new Error('--participants is real or simulated');
  return m;
})();
const fmt = (n: number) => n.toFixed(1);
if (!process.env.MONGO_URL || !process.env.KAFKA_BROKERS) throw new Error('set MONGO_URL and KAFKA_BROKERS (e.g. the test profile: node infra/cli.mjs env test)');

/** Baseline: N messages produced in batches and consumed by a group, timestamps in the messages. */
async function rawRoundTrip(n: number) {
  const kafka = new Kafka({ clientId: 'bench-raw', brokers: process.env.KAFKA_BROKERS!.split(','), logLevel: logLevel.NOTHING });
  const topic = `bench.${uniqueId()}.raw`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3, replicationFactor: 1 }] });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  const consumer = kafka.consumer({ groupId: `${topic}.g`, maxWaitTimeInMs: 50 });
  await Promise.all([producer.connect(), consumer.connect()]);
  await consumer.subscribe({ topic, fromBeginning: true });
  const latencies: number[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => { done = r; });
  let joined!: () => void;
  const ready = new Promise<void>((r) => { joined = r; });
  consumer.on(consumer.events.GROUP_JOIN, () => joined());
  await consumer.run({
    partitionsConsumedConcurrently: 3,
    eachMessage: async ({ message }) => {
      latencies.push(Date.now() - Number(message.value!.toString().split('|')[0]));
      if (latencies.length === n) done();
    },
  });
  await ready;
  const t0 = Date.now();
  for (let i = 0; i < n; i += 200) {
    const batch = Array.from({ length: Math.min(200, n - i) }, (_, j) => ({ key: `s-${i + j}`, value: `${Date.now()}|${'x'.repeat(400)}` }));
    await producer.send({ topic, acks: -1, messages: batch });
  }
  await finished;
  const seconds = (Date.now() - t0) / 1000;
  await Promise.all([consumer.disconnect(), producer.disconnect()]);
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.disconnect();
  return { perSecond: n / seconds, p50: pct(latencies, 50), p95: pct(latencies, 95), seconds };
}

/** Retention's base URL and topic prefix for a run, and how to end it. */
interface Stand {
  base: string; topicPrefix: string; dbProfile?: { print(): void } | undefined; close(): Promise<void>;
  /** Called as the erasures start (real services with BENCH_DB_PROFILE: clears their database tables). */
  erasuresStart?: (() => void) | undefined;
}

/** Retention in this process, the other participants simulated by one child process on the broker. */
async function simulatedStand(authority: TestAuthority): Promise<Stand> {
  const env = isolatedEnv('benchret', {
    AUTH_JWKS_URL: authority.jwksUrl, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn', KAFKA_PARTITIONS: '3',
    // Production defaults, except no scheduled sweep during the run and retries that cannot fire in it.
    ERASURE_RETRY_BASE_MS: '600000', SWEEP_INTERVAL_MS: '0', OUTBOX_POLL_MS: '500',
  });
  const sim = fork(fileURLToPath(new URL('./sim-participants.ts', import.meta.url)), [], { env: { ...process.env, ...env }, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const app = await buildApp(loadConfig(ConfigSchema, process.env.BENCH_DB_PROFILE ? { ...env, MONGO_URL: `${env.MONGO_URL}${env.MONGO_URL!.includes('?') ? '&' : '/?'}monitorCommands=true` } : env));
  const commands = process.env.BENCH_DB_PROFILE ? profileCommands(app.mongo.connection.getClient()) as { table(): string } : undefined;
  const dbProfile = commands && { print: () => process.stderr.write(`[bench] retention: database time by command shape (total ms, count, mean ms):\n${commands.table()}\n`) };
  await app.listen({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => sim.once('message', r));
  return {
    base: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`,
    topicPrefix: env.KAFKA_TOPIC_PREFIX!,
    dbProfile,
    async close() {
      sim.kill('SIGTERM');
      await app.close();
      await dropDatabase(env.MONGO_DB!);
      await dropTopics(env.KAFKA_TOPIC_PREFIX!);
    },
  };
}

/**
 * Every participant real: identity, consent, data-sharing, incident and retention as their built
 * processes, verifying the benchmark's tokens; the `n` subjects registered first (consent records each
 * registration in its ledger, so its part of every erasure has something to pseudonymize).
 */
async function realStand(authority: TestAuthority, n: number): Promise<Stand> {
  const services: ServiceName[] = ['identity', 'consent', 'data-sharing', 'incident', 'retention'];
  const profileOut = process.env.BENCH_DB_PROFILE ? join(tmpdir(), `pipp-bench-db-${uniqueId()}.txt`) : undefined;
  const mongoUrl = process.env.MONGO_URL!;
  const system = await RunningSystem.start({
    services,
    env: {
      AUTH_JWKS_URL: authority.jwksUrl, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn', KAFKA_PARTITIONS: '3',
      ERASURE_RETRY_BASE_MS: '600000', SWEEP_INTERVAL_MS: '0', OUTBOX_POLL_MS: '500',
      ...(profileOut ? {
        MONGO_URL: `${mongoUrl}${mongoUrl.includes('?') ? '&' : '/?'}monitorCommands=true`,
        NODE_OPTIONS: `--import ${fileURLToPath(new URL('./db-profile.mjs', import.meta.url))}`, BENCH_DB_PROFILE_OUT: profileOut,
      } : {}),
    },
  });
  const close = async () => {
    await system.stop();
    if (profileOut) {
      process.stderr.write(readFileSync(profileOut, 'utf8'));
      rmSync(profileOut, { force: true });
    }
    await Promise.all(SERVICES.map((s) => dropDatabase(system.database(s))));
    await dropTopics(system.env.KAFKA_TOPIC_PREFIX!);
  };
  try {
    const events = Array.from({ length: n }, (_, i) => createEvent('privacy.subject.registered', {
      source: 'identity', subject: `bench-${i}`, payload: { subjectId: `bench-${i}`, registeredAt: new Date().toISOString(), policyAcknowledged: { documentId: 'general', version: 1 } },
    }));
    for (let i = 0; i < events.length; i += 500) {
      await produceRaw(system.topic('privacy.subject.registered'), events.slice(i, i + 500).map((e) => ({ key: e.subject!, value: JSON.stringify(e) })));
    }
    // Registered once consent allows the last subject's basic function.
    const token = authority.token({ sub: 'data-sharing', role: 'service', expiresInS: 3600 });
    const body = JSON.stringify({ subjectId: `bench-${n - 1}`, service: 'data-sharing', purpose: 'account', categories: ['phone-number'], functionId: 'sign-in' });
    for (const deadline = Date.now() + 300_000; ;) {
      const res = await fetch(`${system.url('consent')}/v1/consent/decisions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body });
      if (res.ok && ((await res.json()) as { allowed: boolean }).allowed) break;
      if (Date.now() > deadline) throw new Error('the subjects were not registered within 5 minutes');
      await new Promise((r) => setTimeout(r, 500));
    }
    process.stderr.write(`[bench] ${n} subjects registered (consent ledger) on the real services\n`);
  } catch (err) {
    await close();
    throw err;
  }
  return {
    base: system.url('retention'), topicPrefix: system.env.KAFKA_TOPIC_PREFIX!, close,
    // The database tables then count the erasures only, not the registrations.
    erasuresStart: profileOut ? () => { for (const s of services) system.signal(s, 'SIGWINCH'); } : undefined,
  };
}

async function sagaRun(n: number) {
  const authority = await TestAuthority.start();
  const stand = MODE === 'real' ? await realStand(authority, n) : await simulatedStand(authority);
  const { base, dbProfile } = stand;
  try {
    // Completions are read from the broker (privacy.erasure.completed), not by polling the database.
    const kafka = new Kafka({ clientId: 'bench-watch', brokers: process.env.KAFKA_BROKERS!.split(','), logLevel: logLevel.NOTHING });
    const watcher = kafka.consumer({ groupId: `${stand.topicPrefix}bench-watch`, maxWaitTimeInMs: 100 });
    await watcher.connect();
    await watcher.subscribe({ topic: `${stand.topicPrefix}privacy.erasure.completed`, fromBeginning: true });
    const completedAt = new Map<string, number>();
    let lastChange = Date.now();
    await watcher.run({
      eachMessage: async ({ message }) => {
        const e = JSON.parse(message.value!.toString()) as { payload: { requestId: string; completedAt: string } };
        if (!completedAt.has(e.payload.requestId)) { completedAt.set(e.payload.requestId, Date.parse(e.payload.completedAt)); lastChange = Date.now(); }
      },
    });
    const createdAt = new Map<string, number>();
    stand.erasuresStart?.();
    const t0 = Date.now();
    let next = 0;
    const tokens = Array.from({ length: n }, (_, i) => authority.token({ sub: `bench-${i}`, role: 'subject', sid: `s-${i}`, expiresInS: 3600 }));
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < n; i = next++) {
        const res = await fetch(`${base}/v1/retention/subjects/bench-${i}/erasure-requests`, {
          method: 'POST', headers: { authorization: `Bearer ${tokens[i]}`, 'content-type': 'application/json' }, body: JSON.stringify({ scope: { kind: 'account' } }),
        });
        if (res.status !== 201) throw new Error(`request ${i}: HTTP ${res.status} ${await res.text()}`);
        const body = await res.json() as { requestId: string; createdAt: string };
        createdAt.set(body.requestId, Date.parse(body.createdAt));
      }
    }));
    const accepted = (Date.now() - t0) / 1000;
    process.stderr.write(`[bench] ${n} requests accepted in ${fmt(accepted)} s\n`);
    let lastLog = 0;
    while (completedAt.size < n) {
      await new Promise((r) => setTimeout(r, 250));
      if (Date.now() - lastLog > 5000) { lastLog = Date.now(); process.stderr.write(`[bench] ${completedAt.size}/${n} completed after ${fmt((Date.now() - t0) / 1000)} s\n`); }
      if (Date.now() - lastChange > 120_000) throw new Error(`stalled: ${completedAt.size}/${n} completed, no progress for 2 minutes`);
    }
    await watcher.disconnect();
    dbProfile?.print();
    const durations = [...createdAt].map(([id, c]) => completedAt.get(id)! - c);
    const first = Math.min(...createdAt.values());
    const last = Math.max(...completedAt.values());
    return { acceptedPerSecond: n / accepted, completedPerSecond: n / ((last - first) / 1000), p50: pct(durations, 50), p95: pct(durations, 95), seconds: (last - first) / 1000 };
  } finally {
    await stand.close();
    await authority.close();
  }
}

const raw = await rawRoundTrip(N);
const saga = await sagaRun(N);
const target = 10_000 / 60;
console.log(`
Erasure saga benchmark, ${N} subjects, 5 participants each (${MODE === 'real' ? 'identity, consent, data-sharing, incident and retention: the real services, each its own process' : 'retention real; identity, consent, data-sharing, incident simulated by one real process on the broker'})
  raw kafkajs produce→consume (same broker, ${N} msgs): ${fmt(raw.perSecond)} msgs/s, p50 ${raw.p50} ms, p95 ${raw.p95} ms
  erasure requests accepted (HTTP 201, outbox write):   ${fmt(saga.acceptedPerSecond)} requests/s
  erasures completed end to end:                        ${fmt(saga.completedPerSecond)} requests/s over ${fmt(saga.seconds)} s
  completion time per request:                          p50 ${saga.p50} ms, p95 ${saga.p95} ms
  ratios: completed/s ÷ raw msgs/s = ${(saga.completedPerSecond / raw.perSecond).toFixed(3)}; p95 completion ÷ raw p95 = ${fmt(saga.p95 / Math.max(1, raw.p95))}
  target 10,000 subjects in ≤ 60 s needs ≥ ${fmt(target)} completed/s: at this rate 10,000 take ≈ ${fmt(10_000 / saga.completedPerSecond)} s (${saga.completedPerSecond >= target ? 'meets' : 'misses'} the target)
`);
process.exit(0);
