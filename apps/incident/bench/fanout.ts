// Benchmark (prints figures, not a timed test): how fast the incident service fans a notification
// out to N subjects (default 100 000) through Kafka, next to the raw kafkajs batched send rate of N
// per-subject messages measured in the same run on the same broker. Target: fan-out ≥ 50 % of raw.
//
//   MONGO_URL=mongodb://127.0.0.1:27018 KAFKA_BROKERS=127.0.0.1:19092 npx tsx apps/incident/bench/fanout.ts
//   SUBJECTS=20000 … for a quicker run; NODE_OPTIONS=--expose-gc to also print the heap retained.
//
// Figures:
// - raw: kafkajs producer (idempotent, acks=all, like the outbox relay) sendBatch of N one-subject
//   messages in batches of FANOUT_BATCH_SIZE;
// - fan-out: from the operator's POST …/notifications until every subject is on Kafka in a
//   `privacy.notification.batch-ready` event (planner → outbox → relay), counted by a reader;
// - materialized: until every subject has a delivery record and the notification is settled (here
//   every subject lacks a channel, so each is recorded `unreachable` and an announcement follows);
// - heap: the service's peak heap growth during the run (flat memory: it must not grow with N).
import { loadConfig } from '@pipp/service-kit';
import { TestAuthority, dropDatabase, isolatedEnv, uniqueId } from '@pipp/testing';
import { Kafka, logLevel } from 'kafkajs';
import { buildApp } from '../src/app.js';
import { ConfigSchema } from '../src/config.js';

const N = Number(process.env.SUBJECTS ?? 100_000);
const BATCH = Number(process.env.FANOUT_BATCH_SIZE ?? 500);
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:19092').split(',');
process.env.MONGO_URL ??= 'mongodb://127.0.0.1:27018';
process.env.KAFKA_BROKERS ??= brokers.join(',');

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const kafka = new Kafka({ clientId: 'pipp-bench', brokers, logLevel: logLevel.NOTHING });

async function rawBaseline(): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  const topic = `bench.${uniqueId()}.raw`;
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3, replicationFactor: 1 }] });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const notificationId = `ntf_${uniqueId()}`;
  const t0 = performance.now();
  for (let i = 0; i < N; i += BATCH) {
    const messages = [];
    for (let j = i; j < Math.min(N, i + BATCH); j += 1) {
      const subjectId = `sub${String(j).padStart(7, '0')}`;
      messages.push({ key: subjectId, value: JSON.stringify({ notificationId, subjectId }) });
    }
    await producer.sendBatch({ acks: -1, topicMessages: [{ topic, messages }] });
  }
  const ms = performance.now() - t0;
  await producer.disconnect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.disconnect();
  return ms;
}

async function fanOut() {
  const authority = await TestAuthority.start();
  const env = isolatedEnv('incidentbench', {
    AUTH_JWKS_URL: authority.jwksUrl, INCIDENT_PSEUDONYM_KEY: 'bench-pseudonym-key-0123456789abcdefgh', KAFKA_PARTITIONS: '3',
    ANNOUNCEMENT_THRESHOLD: String(N * 10), FANOUT_BATCH_SIZE: String(BATCH), LOG_LEVEL: 'warn', OUTBOX_POLL_MS: '100',
  });
  const app = await buildApp(loadConfig(ConfigSchema, env));
  await app.ready();
  try {
    // Setup (not timed): an incident with N affected subjects, none of whom has a channel on file.
    const token = authority.token({ sub: 'op-bench', role: 'operator', sid: 'sb' });
    const created = await app.inject({
      method: 'POST', url: '/v1/incident/admin/incidents', headers: { authorization: `Bearer ${token}` },
      payload: {
        title: 'Benchmark incident', basicSituation: 'b', categories: ['contact-channel'], possibleImpact: 'p', measuresTaken: ['m'], measuresPlanned: [],
        advice: 'a', remedies: 'r', severity: 'low',
      },
    });
    const incidentId = created.json().id as string;
    for (let i = 0; i < N; i += 10_000) {
      const ids = [];
      for (let j = i; j < Math.min(N, i + 10_000); j += 1) ids.push(`sub${String(j).padStart(7, '0')}`);
      await app.notifier.addAffected(incidentId, ids);
    }

    // A reader counting subjects as their batch events reach the broker.
    const reader = kafka.consumer({ groupId: `bench-reader-${uniqueId()}`, maxWaitTimeInMs: 50 });
    await reader.connect();
    await reader.subscribe({ topic: app.kafka.topic('privacy.notification.batch-ready'), fromBeginning: true });
    let seen = 0;
    let allSeen!: () => void;
    const published = new Promise<void>((r) => { allSeen = r; });
    await reader.run({ eachMessage: async ({ message }) => {
      seen += (JSON.parse(message.value!.toString()) as { payload: { subjectIds: string[] } }).payload.subjectIds.length;
      if (seen >= N) allSeen();
    } });

    global.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    let heapPeak = heap0;
    const sampler = setInterval(() => { heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed); }, 100);

    const t0 = performance.now();
    const res = await app.inject({ method: 'POST', url: `/v1/incident/admin/incidents/${incidentId}/notifications`, headers: { authorization: `Bearer ${token}` }, payload: {} });
    const requestMs = performance.now() - t0;
    if (res.statusCode !== 202) throw new Error(`notify answered ${res.statusCode}: ${res.body}`);
    const notificationId = res.json().id as string;
    const progress = setInterval(() => { void app.models.notifications.findById(notificationId).lean().then((n) => process.stderr.write(`… seen ${seen} on Kafka; plan ${JSON.stringify(n?.plan ?? null)} status ${n?.status}\n`)); }, 5000);
    await published;
    const fanOutMs = performance.now() - t0;
    let status = '';
    while (status !== 'completed') {
      await new Promise((r) => setTimeout(r, 250));
      status = (await app.models.notifications.findById(notificationId).select({ status: 1 }).lean())?.status ?? '';
    }
    const settledMs = performance.now() - t0;
    clearInterval(progress);
    clearInterval(sampler);
    await reader.disconnect();
    const unreachable = await app.models.deliveries.countDocuments({ notificationId, status: 'unreachable' });
    global.gc?.();
    const retainedMb = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
    return { requestMs, fanOutMs, settledMs, unreachable, heapGrowthMb: (heapPeak - heap0) / 2 ** 20, retainedMb };
  } finally {
    await app.close();
    await dropDatabase(env.MONGO_DB!);
    await authority.close();
    const admin = kafka.admin();
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(env.KAFKA_TOPIC_PREFIX!));
    await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.disconnect();
  }
}

const rawMs = await rawBaseline();
process.stderr.write(`raw baseline done in ${Math.round(rawMs)} ms\n`);
const f = await fanOut();
const rawRate = (N / rawMs) * 1000;
const fanRate = (N / f.fanOutMs) * 1000;
const lines = [
  `subjects: ${fmt(N)}, batch size ${BATCH}`,
  `raw kafkajs batched send:   ${fmt(rawRate)} subjects/s (${fmt(rawMs)} ms)`,
  `incident fan-out to Kafka:  ${fmt(fanRate)} subjects/s (${fmt(f.fanOutMs)} ms; the request itself answered 202 in ${fmt(f.requestMs)} ms)`,
  `ratio fan-out / raw:        ${((fanRate / rawRate) * 100).toFixed(1)} %  (target ≥ 50 %: ${fanRate / rawRate >= 0.5 ? 'met' : 'NOT met'})`,
  `materialized and settled:   ${fmt((N / f.settledMs) * 1000)} subjects/s (${fmt(f.settledMs)} ms; ${fmt(f.unreachable)} delivery records)`,
  `service heap growth:        peak ${f.heapGrowthMb.toFixed(1)} MiB (uncollected garbage included), retained after the run ${global.gc ? `${f.retainedMb.toFixed(1)} MiB` : 'n/a (run with NODE_OPTIONS=--expose-gc)'}`,
];
process.stdout.write(`${lines.join('\n')}\n`);
process.exit(0);
