// The consent service starts with its real connections and serves health and its OpenAPI document.
import { TestAuthority, dropDatabase, dropTopics, isolatedEnv, unboundedInputs } from '@pipp/testing';
import { loadConfig } from '@pipp/service-kit';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { ConfigSchema } from '../src/config.js';

let authority: TestAuthority;
let app: Awaited<ReturnType<typeof buildApp>>;
const env: Record<string, string> = {};

beforeAll(async () => {
  authority = await TestAuthority.start();
  Object.assign(env, isolatedEnv('consent', { AUTH_JWKS_URL: authority.jwksUrl, CONSENT_PSEUDONYM_KEY: 'test-pseudonym-key-0123456789abcdef0123456789' }));
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

it('serves a valid OpenAPI document that declares each route\'s roles for the gateway', async () => {
  const res = await app.inject({ url: '/v1/consent/openapi.json' });
  expect(res.statusCode).toBe(200);
  const doc = res.json();
  expect(doc).toMatchObject({ openapi: '3.0.3', info: { title: 'PIPP consent service' } });
  const result = await new Validator().validate(doc);
  expect(result.errors ?? []).toEqual([]);
  expect(result.valid).toBe(true);
  expect(unboundedInputs(doc)).toEqual([]);
  expect(doc.paths['/v1/consent/decisions'].post['x-pipp-roles']).toEqual(['service', 'operator', 'dpo']);
  expect(doc.paths['/v1/consent/subjects/{subjectId}/consents'].post['x-pipp-roles']).toEqual(['subject', 'operator', 'dpo']);
  expect(doc.paths['/v1/consent/admin/policies/{documentId}/versions'].post['x-pipp-roles']).toEqual(['dpo']);
  // Every route outside public/ says who may call it.
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Record<string, unknown>>>)) {
    if (path.includes('/public/')) continue;
    for (const [method, op] of Object.entries(item)) expect(op['x-pipp-roles'], `${method} ${path}`).toBeDefined();
  }
});
