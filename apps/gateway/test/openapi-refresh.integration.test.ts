// The combined OpenAPI document (and the route roles it feeds) catches up within seconds with services
// that start after the gateway, as under `make dev`, instead of at the next OPENAPI_REFRESH_MS.
import { TestAuthority, waitFor } from '@pipp/testing';
import Fastify from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { closedPort, startGateway } from './helpers.js';

let authority: TestAuthority;
let gw: Awaited<ReturnType<typeof startGateway>>;
let port: number;
const late = Fastify();

beforeAll(async () => {
  authority = await TestAuthority.start();
  port = await closedPort();
  const url = `http://127.0.0.1:${port}`;
  gw = await startGateway({
    AUTH_JWKS_URL: authority.jwksUrl, OPENAPI_REFRESH_MS: '3600000',
    CONSENT_URL: url, DATA_SHARING_URL: url, IDENTITY_URL: url, RETENTION_URL: url, INCIDENT_URL: url,
  });
});
afterAll(async () => {
  await late.close();
  await gw?.close();
  await authority?.close();
});

it('lists services that come up after the gateway within seconds, though the regular refresh is an hour away', async () => {
  const doc = async () => (await gw.app.inject({ url: '/docs/openapi.json' })).json();
  expect((await doc()).info['x-pipp-unavailable']).toHaveLength(5);
  late.get<{ Params: { service: string } }>('/v1/:service/openapi.json', async (request) => ({
    openapi: '3.0.3', info: { title: request.params.service, version: '1' },
    paths: { [`/v1/${request.params.service}/public/ping`]: { get: { responses: { 200: { description: 'pong' } } } } },
  }));
  await late.listen({ port, host: '127.0.0.1' });
  await waitFor(async () => (await doc()).info['x-pipp-unavailable'] === undefined, { what: 'every service in the combined document', timeoutMs: 8000 });
  expect((await doc()).paths).toHaveProperty('/v1/retention/public/ping');
});
