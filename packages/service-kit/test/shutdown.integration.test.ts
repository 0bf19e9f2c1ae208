// Graceful shutdown of a real service process: SIGTERM lets the in-flight request finish, then the
// process closes its consumers, producer and database connection and exits 0 within the bound. The
// same when the stop signal arrives twice at once (Ctrl-C under `make dev`: the process group, then
// the watcher forwarding it).
import { TestAuthority, isolatedEnv } from '@pipp/testing';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';

let authority: TestAuthority;
beforeAll(async () => { authority = await TestAuthority.start(); });
afterAll(() => authority.close());

/** Starts the demo server, sends `signals` (ms apart) during a slow request; returns what happened. */
async function stopDuringRequest(signals: NodeJS.Signals[], gapMs: number) {
  const server = fileURLToPath(new URL('./fixtures/demo-server.ts', import.meta.url));
  const env = isolatedEnv('shutdown', { AUTH_JWKS_URL: authority.jwksUrl, SHUTDOWN_TIMEOUT_MS: '8000' });
  const proc = fork(server, [], { env: { ...process.env, ...env }, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const exited = new Promise<{ code: number | null; at: number }>((r) => proc.once('exit', (code) => r({ code, at: Date.now() })));
  const address = await new Promise<{ port: number }>((resolve, reject) => {
    proc.once('message', (m) => resolve((m as { listening: { port: number } }).listening));
    proc.once('exit', (code) => reject(new Error(`server exited early with ${code}`)));
  });

  const inFlight = fetch(`http://127.0.0.1:${address.port}/slow?ms=1500`);
  await new Promise((r) => setTimeout(r, 300));
  const signalledAt = Date.now();
  for (const [i, signal] of signals.entries()) {
    if (i) await new Promise((r) => setTimeout(r, gapMs));
    proc.kill(signal);
  }
  const res = await inFlight;
  const { code, at } = await exited;
  return { status: res.status, body: await res.json(), code, ms: at - signalledAt };
}

it('finishes in-flight requests on SIGTERM and exits 0 within SHUTDOWN_TIMEOUT_MS', async () => {
  const r = await stopDuringRequest(['SIGTERM'], 0);
  expect(r).toMatchObject({ status: 200, body: { done: true }, code: 0 });
  expect(r.ms).toBeLessThan(8000);
});

it('takes a stop signal delivered twice at once (Ctrl-C under a watcher) as one graceful stop', async () => {
  const r = await stopDuringRequest(['SIGINT', 'SIGINT'], 50);
  expect(r).toMatchObject({ status: 200, body: { done: true }, code: 0 });
  expect(r.ms).toBeLessThan(8000);
});
