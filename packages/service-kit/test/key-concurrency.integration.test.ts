// The kit consumer's key-parallel mode on the real broker (ConsumerOptions.keyConcurrency): within one
// partition, different keys (data subjects) are handled at the same time, one key's events strictly in
// order, each once; offsets committed only for what finished, so a new member resumes after it.
import { createEvent } from '@pipp/contracts';
import { TestAuthority, dropDatabase, isolatedEnv, produceRaw, waitFor } from '@pipp/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFastify, infrastructurePlugin, loadConfig } from '../src/index.js';
import { DemoConfigSchema } from './fixtures/demo-app.js';

let authority: TestAuthority;
let env: Record<string, string>;
beforeAll(async () => {
  authority = await TestAuthority.start();
  env = isolatedEnv('keyconc', { AUTH_JWKS_URL: authority.jwksUrl, KAFKA_PARTITIONS: '1' });
});
afterAll(async () => {
  await authority.close();
  await dropDatabase(env.MONGO_DB!);
});

const notice = (subject: string, n: number) => createEvent('privacy.notification.requested', {
  source: 'incident', subject,
  payload: { notificationId: `${subject}-${n}`, kind: 'general', requestedBy: 'incident', audience: { subjectIds: [subject] }, title: 't', body: 'b' },
});

/** A service whose consumer records, per subject, the order it saw events in and how many ran at once. */
async function recorder(seen: Map<string, number[]>, stats: { inFlight: number; max: number }, opts: { env?: Record<string, string>; dedupe?: boolean } = {}) {
  const config = loadConfig(DemoConfigSchema, opts.env ?? env);
  const app = createFastify({ service: 'incident', config });
  await app.register(infrastructurePlugin, { service: 'incident', config, topics: ['privacy.notification.requested'] });
  app.kafka.consume({
    name: 'recorder',
    dedupe: opts.dedupe ?? false,
    keyConcurrency: 8,
    handlers: {
      'privacy.notification.requested': async (event) => {
        stats.inFlight += 1;
        stats.max = Math.max(stats.max, stats.inFlight);
        await new Promise((r) => setTimeout(r, 20)); // a database round trip's worth
        stats.inFlight -= 1;
        const [subject, n] = event.payload.notificationId.split('-') as [string, string];
        seen.set(subject, [...(seen.get(subject) ?? []), Number(n)]);
      },
    },
  });
  await app.ready();
  return app;
}

it('handles different subjects of one partition in parallel and each subject in order, once', async () => {
  const seen = new Map<string, number[]>();
  const stats = { inFlight: 0, max: 0 };
  const app = await recorder(seen, stats);
  try {
    const subjects = Array.from({ length: 8 }, (_, i) => `s${i}`);
    // Interleaved: s0-0, s1-0, … s7-0, s0-1, … (one partition: the topic has one).
    const events = Array.from({ length: 10 }, (_, n) => subjects.map((s) => notice(s, n))).flat();
    await produceRaw(`${env.KAFKA_TOPIC_PREFIX}privacy.notification.requested`, events.map((e) => ({ key: e.subject!, value: JSON.stringify(e) })));
    await waitFor(() => subjects.every((s) => (seen.get(s)?.length ?? 0) >= 10), { what: 'every event', timeoutMs: 30_000 });
    for (const s of subjects) expect(seen.get(s), s).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // 80 events of 20 ms each took far less than 1.6 s one at a time: several subjects ran at once.
    expect(stats.max).toBeGreaterThan(1);
  } finally {
    await app.close();
  }
  // Everything was committed: a new member of the group has nothing left to handle.
  const again = new Map<string, number[]>();
  const later = await recorder(again, { inFlight: 0, max: 0 });
  try {
    const marker = notice('m', 0);
    await produceRaw(`${env.KAFKA_TOPIC_PREFIX}privacy.notification.requested`, [{ key: 'm', value: JSON.stringify(marker) }]);
    await waitFor(() => again.get('m')?.length === 1, { what: 'the marker', timeoutMs: 30_000 });
    expect([...again.keys()]).toEqual(['m']);
  } finally {
    await later.close();
  }
});

it('with deduplication (the default), handles a redelivered event once, subjects still in parallel', async () => {
  const dedupeEnv = isolatedEnv('keydedupe', { AUTH_JWKS_URL: authority.jwksUrl, KAFKA_PARTITIONS: '1' });
  const seen = new Map<string, number[]>();
  const stats = { inFlight: 0, max: 0 };
  const app = await recorder(seen, stats, { env: dedupeEnv, dedupe: true });
  try {
    const subjects = Array.from({ length: 6 }, (_, i) => `d${i}`);
    // Each event twice in a row (a redelivery: same id, same key), subjects interleaved.
    const events = Array.from({ length: 4 }, (_, n) => subjects.map((s) => notice(s, n))).flat().flatMap((e) => [e, e]);
    await produceRaw(`${dedupeEnv.KAFKA_TOPIC_PREFIX}privacy.notification.requested`, events.map((e) => ({ key: e.subject!, value: JSON.stringify(e) })));
    await waitFor(() => subjects.every((s) => (seen.get(s)?.length ?? 0) >= 4), { what: 'every event', timeoutMs: 30_000 });
    for (const s of subjects) expect(seen.get(s), s).toEqual([0, 1, 2, 3]);
    expect(stats.max).toBeGreaterThan(1);
  } finally {
    await app.close();
    await dropDatabase(dedupeEnv.MONGO_DB!);
  }
});

describe('batch handlers', () => {
  // A topic of their own (another prefix): the events above are not theirs to see.
  let batchEnv: Record<string, string>;
  beforeAll(() => { batchEnv = isolatedEnv('keybatch', { AUTH_JWKS_URL: authority.jwksUrl, KAFKA_PARTITIONS: '1' }); });
  afterAll(async () => { await dropDatabase(batchEnv.MONGO_DB!); });

  it('gives a batch handler one subject\'s events together, in order, and falls back to one by one when it fails', async () => {
    const config = loadConfig(DemoConfigSchema, batchEnv);
    const app = createFastify({ service: 'incident', config });
    await app.register(infrastructurePlugin, { service: 'incident', config, topics: ['privacy.notification.requested'] });
    const batches: string[][] = [];
    const single: string[] = [];
    app.kafka.consume({
      name: 'batcher',
      dedupe: false,
      keyConcurrency: 4,
      handlers: {
        'privacy.notification.requested': async (event) => { single.push(event.payload.notificationId); },
      },
      batchHandlers: {
        'privacy.notification.requested': async (events) => {
          if (events.some((e) => e.subject === 'bad')) throw new Error('this batch cannot be applied together');
          batches.push(events.map((e) => e.payload.notificationId));
        },
      },
    });
    try {
      // Produced before the consumer starts, so one fetch holds them all: interleaved subjects, one partition.
      const events = Array.from({ length: 5 }, (_, n) => ['a', 'b', 'bad'].map((s) => notice(s, n))).flat();
      await produceRaw(`${batchEnv.KAFKA_TOPIC_PREFIX}privacy.notification.requested`, events.map((e) => ({ key: e.subject!, value: JSON.stringify(e) })));
      await app.ready();
      await waitFor(() => batches.flat().length + single.length >= 15, { what: 'every event', timeoutMs: 30_000 });
      await new Promise((r) => setTimeout(r, 300)); // nothing more arrives (each event is handled once)
      for (const s of ['a', 'b']) {
        expect(batches.flat().filter((id) => id.startsWith(`${s}-`)), s).toEqual([0, 1, 2, 3, 4].map((n) => `${s}-${n}`));
      }
      expect(batches.some((b) => b.length > 1)).toBe(true);
      // The failing batch went to the per-event handler, in order, each once.
      expect(single).toEqual([0, 1, 2, 3, 4].map((n) => `bad-${n}`));
    } finally {
      await app.close();
    }
  });

  it('refuses batch handlers where they cannot keep their promises', async () => {
    const config = loadConfig(DemoConfigSchema, batchEnv);
    const app = createFastify({ service: 'incident', config });
    await app.register(infrastructurePlugin, { service: 'incident', config, topics: ['privacy.notification.requested'] });
    const handler = async () => {};
    try {
      expect(() => app.kafka.consume({ name: 'x1', keyConcurrency: 4, handlers: { 'privacy.notification.requested': handler }, batchHandlers: { 'privacy.notification.requested': handler } })).toThrow(/dedupe: false/);
      expect(() => app.kafka.consume({ name: 'x2', dedupe: false, handlers: { 'privacy.notification.requested': handler }, batchHandlers: { 'privacy.notification.requested': handler } })).toThrow(/keyConcurrency/);
      expect(() => app.kafka.consume({ name: 'x3', dedupe: false, keyConcurrency: 4, handlers: {}, batchHandlers: { 'privacy.notification.requested': handler } })).toThrow(/without a handler/);
    } finally {
      await app.close();
    }
  });
});
