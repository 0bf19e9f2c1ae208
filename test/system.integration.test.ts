// The whole platform as real processes: every service starts, becomes ready against the shared Kafka
// and FerretDB, and a crashed service comes back.
import { RunningSystem, dropDatabase } from '@pipp/testing';
import { SERVICES } from '@pipp/contracts';
import { afterAll, beforeAll, expect, it } from 'vitest';

let system: RunningSystem;
beforeAll(async () => { system = await RunningSystem.start(); }, 180_000);
afterAll(async () => {
  await system?.stop();
  await Promise.all(SERVICES.map((s) => dropDatabase(system.database(s))));
});

it('runs every service as a process, ready on its own database', async () => {
  for (const s of SERVICES) {
    const res = await fetch(`${system.url(s)}/readyz`);
    expect(res.status, s).toBe(200);
  }
});

it('brings a killed service back', async () => {
  await system.restart('consent');
  expect((await fetch(`${system.url('consent')}/readyz`)).status).toBe(200);
}, 120_000);
