// The identity service starts with its real connections and serves health and its OpenAPI document.
import { unboundedInputs } from '@pipp/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { identityEnv, startIdentity, stopIdentity, type IdentityApp } from './helpers.js';

let app: IdentityApp;
let env: Record<string, string>;

beforeAll(async () => {
  env = identityEnv();
  app = await startIdentity(env);
});
afterAll(() => stopIdentity(app, env));

it('is live and ready once its dependencies answer', async () => {
  expect((await app.inject({ url: '/livez' })).statusCode).toBe(200);
  const ready = await app.inject({ url: '/readyz' });
  expect(ready.statusCode).toBe(200);
  expect(ready.json().checks).toMatchObject({ mongo: { ok: true }, kafka: { ok: true } });
});

it('serves its OpenAPI document', async () => {
  const res = await app.inject({ url: '/v1/identity/openapi.json' });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toMatchObject({ openapi: '3.0.3', info: { title: 'PIPP identity service' } });
  expect(unboundedInputs(res.json())).toEqual([]);
  expect(Object.keys(res.json().paths)).toEqual(expect.arrayContaining(['/v1/identity/public/registrations', '/v1/identity/.well-known/jwks.json']));
  // The gateway refuses collection for a shut-down function at the edge only where a route names it
  // (no route did: the gateway's check never ran).
  expect(res.json().paths['/v1/identity/subjects/{subjectId}/activity'].post['x-pipp-function']).toBe('personalization');
});
