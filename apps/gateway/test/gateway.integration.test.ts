// The gateway end to end on the real broker and database, in front of real upstream services (fixtures
// that verify tokens themselves): routing, authentication, roles, the ownership matrix, purposes, path
// and body hardening, forwarded identity, upstream failures, security headers, the combined OpenAPI
// document, function shutdown and the audit trail.
import { createEvent, ErrorResponseSchema, compile, topicFor } from '@pipp/contracts';
import { TestAuthority, produceRaw, waitFor } from '@pipp/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateDocument } from '../src/plugins/api-docs.js';
import { startUpstream, SUBJECT_ROUTES, type FixtureUpstream } from './fixtures/upstream.js';
import { bearer, closedPort, startGateway, type Gateway } from './helpers.js';

const isErrorShape = compile(ErrorResponseSchema);
let authority: TestAuthority;
let consent: FixtureUpstream;
let sharing: FixtureUpstream;
let gw: Awaited<ReturnType<typeof startGateway>>;
let app: Gateway;
let downPort: number;

const A = 'subjA1';
const B = 'subjB2';
let tokens: Record<'a' | 'b' | 'operator' | 'dpo' | 'service', string>;

beforeAll(async () => {
  authority = await TestAuthority.start();
  [consent, sharing, downPort] = await Promise.all([
    startUpstream('consent', { jwksUrl: authority.jwksUrl }),
    startUpstream('data-sharing', { jwksUrl: authority.jwksUrl }),
    closedPort(),
  ]);
  gw = await startGateway({
    AUTH_JWKS_URL: authority.jwksUrl,
    CONSENT_URL: consent.url,
    DATA_SHARING_URL: sharing.url,
    IDENTITY_URL: `http://127.0.0.1:${downPort}`,
    RETENTION_URL: `http://127.0.0.1:${downPort}`,
    INCIDENT_URL: `http://127.0.0.1:${downPort}`,
    UPSTREAM_TIMEOUT_MS: '400',
    CIRCUIT_FAILURE_THRESHOLD: '3',
    CIRCUIT_OPEN_MS: '30000',
    CORS_ORIGINS: 'https://app.example.test',
    AUDIT_FLUSH_MS: '20',
    BODY_LIMIT_BYTES: '2048',
  });
  app = gw.app;
  tokens = {
    a: authority.token({ sub: A, role: 'subject', sid: 'sessA' }),
    b: authority.token({ sub: B, role: 'subject', sid: 'sessB' }),
    operator: authority.token({ sub: 'op-7', role: 'operator', sid: 'sessO' }),
    dpo: authority.token({ sub: 'dpo-1', role: 'dpo', sid: 'sessD' }),
    service: authority.token({ sub: 'retention', role: 'service' }),
  };
});

afterAll(async () => {
  await gw?.close();
  await Promise.all([consent?.close(), sharing?.close()]);
  await authority?.close();
});

const hitsTo = (upstream: FixtureUpstream, fragment: string) => upstream.hits.filter((h) => h.url.includes(fragment)).length;

describe('routing', () => {
  it('proxies each service under its own /v1/<service>/ path unchanged, query included', async () => {
    const res = await app.inject({ url: '/v1/consent/public/policy?lang=en' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true });
    expect(consent.hits.at(-1)?.url).toBe('/v1/consent/public/policy?lang=en');
    const other = await app.inject({ url: '/v1/data-sharing/public/policy' });
    expect(other.statusCode).toBe(200);
    expect(sharing.hits.at(-1)?.url).toBe('/v1/data-sharing/public/policy');
  });

  it('answers unknown services and paths outside /v1/<service>/ with 404 in the one error shape', async () => {
    for (const url of ['/v1/nope/public/x', '/v2/consent/public/policy', '/consent/public/policy']) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(404);
      expect(isErrorShape(res.json())).toBe(true);
    }
  });
});
