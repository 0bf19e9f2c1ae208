// The data-sharing service starts with its real connections and serves health and its OpenAPI document.
import { TestAuthority, unboundedInputs } from '@pipp/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Databases, dsEnv, startDs, type DsApp } from './helpers.js';

let authority: TestAuthority;
let app: DsApp;
const dbs = new Databases();

beforeAll(async () => {
  authority = await TestAuthority.start();
  app = await startDs(authority, dbs.add(dsEnv(authority)));
});
afterAll(async () => {
  await app?.close();
  await authority.close();
  await dbs.dropAll();
});

it('is live and ready once its dependencies answer', async () => {
  expect((await app.inject({ url: '/livez' })).statusCode).toBe(200);
  const ready = await app.inject({ url: '/readyz' });
  expect(ready.statusCode).toBe(200);
  expect(ready.json().checks).toMatchObject({ mongo: { ok: true }, kafka: { ok: true } });
});

it('serves its OpenAPI document with every route under /v1/data-sharing', async () => {
  const res = await app.inject({ url: '/v1/data-sharing/openapi.json' });
  expect(res.statusCode).toBe(200);
  const doc = res.json();
  expect(doc).toMatchObject({ openapi: '3.0.3', info: { title: 'PIPP data-sharing service' } });
  expect(unboundedInputs(res.json())).toEqual([]);
  const paths = Object.keys(doc.paths);
  expect(paths.every((p) => p.startsWith('/v1/data-sharing/'))).toBe(true);
  expect(paths).toEqual(expect.arrayContaining([
    '/v1/data-sharing/subjects/{subjectId}/shares', '/v1/data-sharing/admin/recipients', '/v1/data-sharing/releases',
    '/v1/data-sharing/public/deletion-notices/{noticeId}/acknowledgments',
  ]));
});
