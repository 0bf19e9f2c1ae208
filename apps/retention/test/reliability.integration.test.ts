// No erasure is lost or left half-done when a participant, the orchestrator or the broker is killed
// mid-way and comes back (DESIGN.md: outbox in the same write, idempotent consumers, offsets committed
// after the effect). Real processes killed with SIGKILL; each participant's effect applied once.
import { startKafka, stopPidFile } from '@pipp/infra';
import { loadConfig } from '@pipp/service-kit';
import { freePort, waitFor, withMongo } from '@pipp/testing';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildParticipantApp, ParticipantConfigSchema, type Person } from './fixtures/participant-app.js';
import { events, Harness } from './helpers.js';

const PARTICIPANT = fileURLToPath(new URL('./fixtures/participant-server.ts', import.meta.url));
const RETENTION = fileURLToPath(new URL('./fixtures/retention-server.ts', import.meta.url));

let h: Harness;
const children: ChildProcess[] = [];
beforeAll(async () => { h = await Harness.start(); });
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await h?.close();
});

/** Starts a server fixture as a real process; resolves with its port once it listens. */
async function spawn(file: string, env: Record<string, string>): Promise<{ proc: ChildProcess; port: number }> {
  const proc = fork(file, [], { env: { ...process.env, ...env }, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  children.push(proc);
  const port = await new Promise<number>((resolve, reject) => {
    proc.once('message', (m) => resolve((m as { listening: { port: number } }).listening.port));
    proc.once('exit', (code, signal) => reject(new Error(`${file} exited early (${code ?? signal})`)));
  });
  return { proc, port };
}
async function kill(proc: ChildProcess) {
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await exited;
}

const person = (id: string): Person => ({ _id: id, phone: '+8613800138000', name: `Name ${id}`, email: `${id}@example.com`, erasedBy: [], erasures: 0 });
async function seed(db: string, ids: string[]) {
  await withMongo((c) => c.db(db).collection('people').insertMany(ids.map(person) as never[]));
}
async function open(base: string | { inject: (o: object) => Promise<{ statusCode: number; json(): { requestId: string } }> }, subjectId: string): Promise<string> {
  const payload = { scope: { kind: 'account' } };
  const headers = h.auth(subjectId);
  if (typeof base === 'string') {
    const res = await fetch(`${base}/v1/retention/subjects/${subjectId}/erasure-requests`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(payload) });
    expect(res.status).toBe(201);
    return ((await res.json()) as { requestId: string }).requestId;
  }
  const res = await base.inject({ method: 'POST', url: `/v1/retention/subjects/${subjectId}/erasure-requests`, headers, payload });
  expect(res.statusCode).toBe(201);
  return res.json().requestId;
}
async function statuses(db: string, ids: string[]) {
  return withMongo(async (c) => c.db(db).collection('erasure_requests').find({ _id: { $in: ids as never[] } }, { projection: { status: 1, participants: 1, attempt: 1 } }).toArray());
}
async function allCompleted(db: string, ids: string[], timeoutMs: number) {
  await waitFor(async () => {
    const open = (await statuses(db, ids)).filter((r) => r.status !== 'completed');
    // On a timeout the message shows where the first open requests stand.
    if (open.length) throw new Error(`${open.length} open, e.g. ${JSON.stringify(open.slice(0, 3).map((r) => ({ id: r._id, attempt: r.attempt, participants: Object.fromEntries(Object.entries(r.participants ?? {}).map(([n, p]) => [n, (p as { state: string }).state])) })))}`);
    return true;
  }, { what: `all ${ids.length} requests to complete`, timeoutMs, intervalMs: 500 });
}
/** Every subject erased exactly once, for exactly its request. */
async function erasedOnce(db: string, bySubject: Map<string, string>) {
  const people = await withMongo((c) => c.db(db).collection<Person>('people').find({ _id: { $in: [...bySubject.keys()] } }).toArray());
  expect(people).toHaveLength(bySubject.size);
  for (const p of people) {
    expect({ id: p._id, erasedBy: p.erasedBy, erasures: p.erasures }).toEqual({ id: p._id, erasedBy: [bySubject.get(p._id)], erasures: 1 });
    expect(p.phone ?? p.name ?? p.email).toBeUndefined();
  }
}

describe('a participant killed during a batch of erasures', () => {
  it('completes every request after the restart, each effect applied once', async () => {
    const env = h.env({ ERASURE_PARTICIPANTS: 'identity,retention', ERASURE_RETRY_BASE_MS: '3000' });
    // Slow enough per subject that the kill below lands part-way through the batch, however fast the rest is.
    const penv = h.sibling(env, 'identity', { PARTICIPANT_NAME: 'identity', ERASE_DELAY_MS: '150' });
    const subjects = Array.from({ length: 40 }, (_, i) => `subj-p${i}`);
    await seed(penv.MONGO_DB!, subjects);
    const app = await h.retention(env);
    let participant = await spawn(PARTICIPANT, penv);

    const bySubject = new Map<string, string>();
    for (const s of subjects) bySubject.set(s, await open(app, s));
    const ids = [...bySubject.values()];
    // Kill it once it is part-way through the batch.
    await waitFor(async () => {
      const done = await withMongo((c) => c.db(penv.MONGO_DB!).collection('people').countDocuments({ erasures: { $gt: 0 } }));
      return done >= 5;
    }, { what: 'the participant to be part-way through', timeoutMs: 60_000, intervalMs: 50 });
    await kill(participant.proc);
    const before = (await statuses(env.MONGO_DB!, ids)).filter((r) => r.status === 'completed').length;
    expect(before).toBeLessThan(ids.length);

    participant = await spawn(PARTICIPANT, penv);
    await allCompleted(env.MONGO_DB!, ids, 120_000);
    await erasedOnce(penv.MONGO_DB!, bySubject);
    await kill(participant.proc);
  }, 240_000);
});

describe('the orchestrator killed mid-way', () => {
  it('loses no request and announces each completion once', async () => {
    const env = h.env({ ERASURE_PARTICIPANTS: 'identity,retention', ERASURE_RETRY_BASE_MS: '3000' });
    const penv = h.sibling(env, 'identity', { PARTICIPANT_NAME: 'identity', ERASE_DELAY_MS: '20' });
    const subjects = Array.from({ length: 30 }, (_, i) => `subj-o${i}`);
    await seed(penv.MONGO_DB!, subjects);
    const participant = h.track(await buildParticipantApp(loadConfig(ParticipantConfigSchema, penv) as never));
    await (participant as unknown as { ready(): Promise<unknown> }).ready();
    let retention = await spawn(RETENTION, env);

    const bySubject = new Map<string, string>();
    for (const s of subjects) bySubject.set(s, await open(`http://127.0.0.1:${retention.port}`, s));
    const ids = [...bySubject.values()];
    await waitFor(async () => (await statuses(env.MONGO_DB!, ids)).some((r) => r.status === 'completed'), { what: 'a first completion', timeoutMs: 60_000, intervalMs: 50 });
    await kill(retention.proc);
    expect((await statuses(env.MONGO_DB!, ids)).filter((r) => r.status === 'completed').length).toBeLessThan(ids.length);

    retention = await spawn(RETENTION, env);
    await allCompleted(env.MONGO_DB!, ids, 120_000);
    await erasedOnce(penv.MONGO_DB!, bySubject);
    const completions = await events(env, 'privacy.erasure.completed', (e) => new Set(e.map((x) => x.payload.requestId)).size >= ids.length, 60_000);
    for (const id of ids) {
      const mine = completions.filter((e) => e.payload.requestId === id);
      if (new Set(mine.map((e) => e.id)).size !== 1) console.log(JSON.stringify(mine, null, 1), JSON.stringify(await withMongo((c) => c.db(env.MONGO_DB!).collection('erasure_requests').findOne({ _id: id as never })), null, 1));
      expect(new Set(mine.map((e) => e.id)).size, id).toBe(1);
    }
    await kill(retention.proc);
  }, 240_000);
});

describe('the broker killed mid-way', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'pipp-retention-broker-'));
  afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

  it('accepts requests while it is down and completes every one once it is back', async () => {
    const [port, controllerPort] = [await freePort(), await freePort()];
    const start = () => startKafka({ stateDir, port, controllerPort, heapMb: 256 });
    let kafka = await start();
    try {
      const env = h.env({ KAFKA_BROKERS: kafka.brokers, ERASURE_PARTICIPANTS: 'identity,retention', ERASURE_RETRY_BASE_MS: '3000' });
      const penv = h.sibling(env, 'identity', { PARTICIPANT_NAME: 'identity' });
      const subjects = Array.from({ length: 30 }, (_, i) => `subj-k${i}`);
      await seed(penv.MONGO_DB!, subjects);
      const participant = h.track(await buildParticipantApp(loadConfig(ParticipantConfigSchema, penv) as never));
      await (participant as unknown as { ready(): Promise<unknown> }).ready();
      const app = await h.retention(env);

      const bySubject = new Map<string, string>();
      for (const s of subjects.slice(0, 15)) bySubject.set(s, await open(app, s));
      await waitFor(async () => (await statuses(env.MONGO_DB!, [...bySubject.values()])).some((r) => r.status === 'completed'), { what: 'a first completion', timeoutMs: 60_000, intervalMs: 50 });
      await stopPidFile(kafka.pidFile);
      // The broker is gone: requests are still accepted, their events wait in the outbox.
      for (const s of subjects.slice(15)) bySubject.set(s, await open(app, s));
      kafka = await start();
      await allCompleted(env.MONGO_DB!, [...bySubject.values()], 180_000);
      await erasedOnce(penv.MONGO_DB!, bySubject);
    } finally {
      await stopPidFile(kafka.pidFile);
    }
  }, 300_000);
});
