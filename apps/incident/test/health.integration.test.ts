// The incident service starts with its real connections and serves health and its OpenAPI document.
import { TestAuthority, dropDatabase, dropTopics, isolatedEnv, unboundedInputs } from '@pipp/testing';
import { loadConfig } from '@pipp/service-kit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { ConfigSchema } from '../src/config.js';

let authority: TestAuthority;
let app: Awaited<ReturnType<typeof buildApp>>;
const env: Record<string, string> = {};

beforeAll(async () => {
  authority = await TestAuthority.start();
  Object.assign(env, isolatedEnv('incident', { AUTH_JWKS_URL: authority.jwksUrl, INCIDENT_PSEUDONYM_KEY: 'health-test-pseudonym-key-0123456789ab' }));
  app = await buildApp(loadConfig(ConfigSchema, env));
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await authority.close();
  await dropDatabase(env.MONGO_DB!);
  await dropTopics(env.KAFKA_TOPIC_PREFIX!);
});

it('is live and ready once its dependencies answer', async () => {
  expect((await app.inject({ url: '/livez' })).statusCode).toBe(200);
  const ready = await app.inject({ url: '/readyz' });
  expect(ready.statusCode).toBe(200);
  expect(ready.json().checks).toMatchObject({ mongo: { ok: true }, kafka: { ok: true } });
});

it('serves its OpenAPI document', async () => {
  const res = await app.inject({ url: '/v1/incident/openapi.json' });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toMatchObject({ openapi: '3.0.3', info: { title: 'PIPP incident service' } });
  expect(unboundedInputs(res.json())).toEqual([]);
});
