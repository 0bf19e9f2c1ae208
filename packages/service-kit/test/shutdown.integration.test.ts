// Graceful shutdown of a real service process: SIGTERM lets the in-flight request finish, then the
// process closes its consumers, producer and database connection and exits 0 within the bound.
import { TestAuthority, isolatedEnv } from '@pipp/testing';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';

let authority: TestAuthority;
beforeAll(async () => { authority = await TestAuthority.start(); });
afterAll(() => authority.close());

it('finishes in-flight requests on SIGTERM and exits 0 within SHUTDOWN_TIMEOUT_MS', async () => {
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
  proc.kill('SIGTERM');

  const res = await inFlight;
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ done: true });
  const { code, at } = await exited;
  expect(code).toBe(0);
  expect(at - signalledAt).toBeLessThan(8000);
});
