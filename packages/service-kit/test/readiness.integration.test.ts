// /readyz follows the real dependencies: it goes false when FerretDB or the Kafka broker stops and
// true again when they return, and the outbox delivers again afterwards. Runs its own broker and
// FerretDB (on free ports, in a temporary folder) so that stopping them disturbs no other test.
import { startFerret, startKafka, stopPidFile } from '@pipp/infra';
import { TestAuthority, freePort, isolatedEnv, waitFor } from '@pipp/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { startDemoApp } from './fixtures/demo-app.js';

const stateDir = mkdtempSync(join(tmpdir(), 'pipp-readiness-'));
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  rmSync(stateDir, { recursive: true, force: true });
});


it('tracks MongoDB and Kafka outages and recovers from both', async () => {
  const [mongoPort, kafkaPort, controllerPort] = [await freePort(), await freePort(), await freePort()];
  const startMongo = () => startFerret({ stateDir, port: mongoPort });
  const startBroker = () => startKafka({ stateDir, port: kafkaPort, controllerPort, heapMb: 256 });
  const [ferret, kafka] = await Promise.all([startMongo(), startBroker()]);
  cleanups.push(() => stopPidFile(ferret.pidFile), () => stopPidFile(kafka.pidFile));

  const authority = await TestAuthority.start();
  cleanups.push(() => authority.close());
  const env = isolatedEnv('readiness', { MONGO_URL: ferret.url, KAFKA_BROKERS: kafka.brokers, AUTH_JWKS_URL: authority.jwksUrl });
  const app = await startDemoApp(env);
  cleanups.push(() => app.close());

  const readiness = async () => {
    const res = await app.inject({ url: '/readyz' });
    return { status: res.statusCode, checks: res.json().checks as Record<string, { ok: boolean }> };
  };
  expect((await readiness()).status).toBe(200);

  await stopPidFile(ferret.pidFile);
  const mongoDown = await waitFor(async () => { const r = await readiness(); return r.status === 503 && r.checks.mongo?.ok === false ? r : null; }, { what: 'readiness to fail without MongoDB' });
  expect(mongoDown.checks.kafka?.ok).toBe(true);
  // Bad input is still 4xx and a write during the outage is a prompt 503, not a hang.
  const token = authority.token({ sub: 'subj-r', role: 'subject' });
  const during = await app.inject({ method: 'POST', url: '/notes', headers: { authorization: `Bearer ${token}` }, payload: { id: 'r-0', text: 'x' } });
  expect(during.statusCode).toBe(503);
  expect(during.headers['retry-after']).toBeDefined();

  await startMongo();
  await waitFor(async () => (await readiness()).status === 200, { what: 'readiness after MongoDB returned', timeoutMs: 30_000 });

  await stopPidFile(kafka.pidFile);
  const kafkaDown = await waitFor(async () => { const r = await readiness(); return r.status === 503 && r.checks.kafka?.ok === false ? r : null; }, { what: 'readiness to fail without Kafka' });
  expect(kafkaDown.checks.mongo?.ok).toBe(true);
  // Accepted while the broker is away: the event waits in the outbox.
  const accepted = await app.inject({ method: 'POST', url: '/notes', headers: { authorization: `Bearer ${token}` }, payload: { id: 'r-1', text: 'x' } });
  expect(accepted.statusCode).toBe(201);

  await startBroker();
  // A broker restart on 2 cores shared with the rest of the suite can take a minute or more (seen in a full run).
  await waitFor(async () => {
    const r = await readiness();
    if (r.status !== 200) throw new Error(`still ${r.status}: ${JSON.stringify(r.checks)}`); // named in the timeout message
    return true;
  }, { what: 'readiness after Kafka returned', timeoutMs: 120_000 });
  await waitFor(async () => (await app.models.effects.findById('r-1'))?.count === 1, { what: 'the event written during the outage to be delivered', timeoutMs: 90_000 });
}, 330_000);
