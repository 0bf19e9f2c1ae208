// The gateway service starts with its real connections and serves health and its OpenAPI document.
import { TestAuthority, dropDatabase, isolatedEnv, unboundedInputs, waitFor } from '@pipp/testing';
import { loadConfig } from '@pipp/service-kit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { ConfigSchema } from '../src/config.js';

let authority: TestAuthority;
let app: Awaited<ReturnType<typeof buildApp>>;
const env: Record<string, string> = {};

beforeAll(async () => {
  authority = await TestAuthority.start();
  Object.assign(env, isolatedEnv('gateway', { AUTH_JWKS_URL: authority.jwksUrl }));
  app = await buildApp(loadConfig(ConfigSchema, env));
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await authority.close();
  await dropDatabase(env.MONGO_DB!);
});

it('is live and ready once its dependencies answer', async () => {
  expect((await app.inject({ url: '/livez' })).statusCode).toBe(200);
  // Each check has 1.5 s: on a loaded machine the first metadata request can take longer (a CI rehearsal saw 503).
  const ready = await waitFor(async () => { const r = await app.inject({ url: '/readyz' }); return r.statusCode === 200 ? r : null; }, { what: 'readiness', timeoutMs: 20_000 });
  expect(ready.json().checks).toMatchObject({ kafka: { ok: true } });
});

it('serves its OpenAPI document', async () => {
  const res = await app.inject({ url: '/v1/gateway/openapi.json' });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toMatchObject({ openapi: '3.0.3', info: { title: 'PIPP gateway service' } });
  expect(unboundedInputs(res.json())).toEqual([]);
});
