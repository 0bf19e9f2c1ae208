// The gateway end to end on the real broker and database, in front of real upstream services (fixtures
// that verify tokens themselves): routing, authentication, roles, the ownership matrix, purposes, path
// and body hardening, forwarded identity, upstream failures, security headers, the combined OpenAPI
// document, function shutdown and the audit trail.
import { createEvent, ErrorResponseSchema, compile, topicFor } from '@pipp/contracts';
import { TestAuthority, produceRaw, waitFor } from '@pipp/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@pipp/service-kit';
import { buildApp } from '../src/app.js';
import { ConfigSchema } from '../src/config.js';
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
    // A query string that cannot be decoded is a 400 at the gateway (its proxy threw: a 500), never forwarded.
    const hits = consent.hits.length;
    for (const url of ['/v1/consent/public/policy?x=%', '/v1/consent/public/policy?cursor=a%FF']) {
      expect((await app.inject({ url })).json(), url).toMatchObject({ statusCode: 400, code: 'PIPP_VALIDATION' });
    }
    expect(consent.hits.length).toBe(hits);
    expect((await app.inject({ url: '/v1/consent/public/policy?q=%E4%B8%AD' })).statusCode).toBe(200);
    // Dot segments are refused in the path only: a query value may hold "../" (it was a 400 from the proxy).
    const dots = await app.inject({ url: '/v1/consent/public/policy?x=../../B2&y=%2F..%2F' });
    expect(dots.statusCode).toBe(200);
    expect(consent.hits.at(-1)?.url).toBe('/v1/consent/public/policy?x=../../B2&y=%2F..%2F');
  });

  it('answers unknown services and paths outside /v1/<service>/ with 404 in the one error shape', async () => {
    for (const url of ['/v1/nope/public/x', '/v2/consent/public/policy', '/consent/public/policy']) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(404);
      expect(isErrorShape(res.json())).toBe(true);
    }
  });
});

describe('authentication (ES256 from the JWKS; exp, nbf, iss, aud; no alg none, no HMAC)', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const hostile = () => ({
    'no token': undefined,
    'not a JWT': 'not-a-jwt',
    expired: authority.token({ sub: A, role: 'subject', iat: now() - 600, expiresInS: 60 }),
    'not yet valid (nbf)': authority.token({ sub: A, role: 'subject', nbf: now() + 600 }),
    'wrong audience': authority.token({ sub: A, role: 'subject', aud: 'someone-else' }),
    'wrong issuer': authority.token({ sub: A, role: 'subject', iss: 'https://evil.example' }),
    'alg none': authority.unsignedToken({ sub: A, role: 'subject' }),
    'algorithm confusion (HS256 with the public key)': authority.hmacWithPublicKeyToken({ sub: A, role: 'subject' }),
    'unknown role': authority.token({ sub: A, role: 'root' }),
    'tampered payload': (() => {
      const [h, , s] = authority.token({ sub: A, role: 'subject' }).split('.');
      const p = Buffer.from(JSON.stringify({ sub: A, role: 'dpo', iss: 'pipp-identity', aud: 'pipp', iat: now(), exp: now() + 300 })).toString('base64url');
      return `${h}.${p}.${s}`;
    })(),
  });

  it('answers every invalid token with 401 (never 5xx), at the gateway, and the request never leaves it', async () => {
    for (const [what, token] of Object.entries(hostile())) {
      const before = hitsTo(consent, `/subjects/${A}/profile`);
      const res = await app.inject({ url: `/v1/consent/subjects/${A}/profile`, headers: token ? bearer(token) : {} });
      expect(res.statusCode, what).toBe(401);
      expect(res.json(), what).toMatchObject({ code: 'PIPP_UNAUTHORIZED' });
      expect(isErrorShape(res.json()), what).toBe(true);
      expect(hitsTo(consent, `/subjects/${A}/profile`), what).toBe(before);
    }
  });

  it('and the service refuses the same tokens itself when called directly', async () => {
    for (const [what, token] of Object.entries(hostile())) {
      const res = await fetch(`${consent.url}/v1/consent/subjects/${A}/profile`, { headers: token ? bearer(token) : {} });
      expect(res.status, what).toBe(401);
    }
  });

  it('accepts a valid token, and tokens of a rotated key without a restart', async () => {
    expect((await app.inject({ url: `/v1/consent/subjects/${A}/profile`, headers: bearer(tokens.a) })).statusCode).toBe(200);
    authority.rotate();
    const fresh = authority.token({ sub: A, role: 'subject' });
    const res = await app.inject({ url: `/v1/consent/subjects/${A}/profile`, headers: bearer(fresh) });
    expect(res.statusCode).toBe(200);
    // The old key is still published during the rotation, so earlier tokens stay valid …
    expect((await app.inject({ url: `/v1/consent/subjects/${A}/profile`, headers: bearer(tokens.a) })).statusCode).toBe(200);
  });

  it('rejects the tokens of a revoked session as soon as identity announces the revocation', async () => {
    const token = authority.token({ sub: A, role: 'subject', sid: 'to-revoke', iat: Math.floor(Date.now() / 1000) - 5 });
    expect((await app.inject({ url: `/v1/consent/subjects/${A}/consents`, headers: bearer(token) })).statusCode).toBe(200);
    const event = createEvent('privacy.session.revoked', {
      source: 'identity', subject: A, payload: { subjectId: A, sessionId: 'to-revoke', notBefore: new Date().toISOString(), reason: 'sign-out' },
    });
    await produceRaw(topicFor('privacy.session.revoked', gw.env.KAFKA_TOPIC_PREFIX), [{ key: A, value: JSON.stringify(event) }]);
    await waitFor(async () => (await app.inject({ url: `/v1/consent/subjects/${A}/consents`, headers: bearer(token) })).statusCode === 401, { what: 'revocation applied' });
    expect((await app.inject({ url: `/v1/consent/subjects/${A}/consents`, headers: bearer(tokens.a) })).statusCode).toBe(200);
  });

  it('lets anonymous callers reach public routes, OpenAPI documents and nothing else', async () => {
    expect((await app.inject({ url: '/v1/consent/public/policy' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/v1/consent/openapi.json' })).statusCode).toBe(200);
    for (const url of ['/v1/consent/admin/reports', '/v1/consent/echo-headers', `/v1/consent/subjects/${A}/profile`, '/v1/gateway/admin/audit-records']) {
      expect((await app.inject({ url })).statusCode, url).toBe(401);
    }
    // An invalid token on a public route is ignored, not an error (the visitor can still sign in).
    expect((await app.inject({ url: '/v1/consent/public/policy', headers: bearer('garbage') })).statusCode).toBe(200);
  });
});

describe('roles per route', () => {
  const matrix: [string, string, Partial<Record<keyof typeof tokens, number>>][] = [
    ['GET', '/v1/consent/admin/reports', { a: 403, service: 403, operator: 200, dpo: 200 }],
    // The service declares x-pipp-roles [dpo]: the gateway learns it from its OpenAPI document.
    ['GET', '/v1/consent/admin/dpo-only', { a: 403, service: 403, operator: 403, dpo: 200 }],
    ['GET', '/v1/consent/echo-headers', { a: 200, service: 200, operator: 200, dpo: 200 }],
    ['GET', '/v1/gateway/admin/audit-records', { a: 403, service: 403, operator: 403, dpo: 200 }],
    ['GET', '/v1/gateway/admin/upstreams', { a: 403, service: 403, operator: 200, dpo: 200 }],
  ];
  for (const [method, url, expected] of matrix) {
    it(`${method} ${url}`, async () => {
      for (const [who, status] of Object.entries(expected)) {
        const res = await app.inject({ method: method as 'GET', url, headers: bearer(tokens[who as keyof typeof tokens]) });
        expect(res.statusCode, who).toBe(status);
      }
    });
  }

  it('refuses declared-role violations at the gateway before the service sees them', async () => {
    const before = hitsTo(consent, '/admin/dpo-only');
    expect((await app.inject({ url: '/v1/consent/admin/dpo-only', headers: bearer(tokens.operator) })).statusCode).toBe(403);
    expect(hitsTo(consent, '/admin/dpo-only')).toBe(before);
  });

  it('lets only the declared roles ask for decisions (service, operator, dpo), never a subject', async () => {
    const body = { subjectId: A, purpose: 'profile' };
    expect((await app.inject({ method: 'POST', url: '/v1/consent/decisions', headers: bearer(tokens.a), payload: body })).statusCode).toBe(403);
    for (const who of ['service', 'operator', 'dpo'] as const) {
      const res = await app.inject({ method: 'POST', url: '/v1/consent/decisions', headers: bearer(tokens[who]), payload: body });
      expect(res.statusCode, who).toBe(200);
      expect(res.json()).toEqual({ allowed: true });
    }
  });
});

describe('ownership matrix: a subject never reads or changes another subject\'s data', () => {
  for (const upstream of ['consent', 'data-sharing'] as const) {
    for (const [method, resource] of SUBJECT_ROUTES) {
      it(`${method} /v1/${upstream}/subjects/{other}/${resource}: 403 at the gateway and at the service`, async () => {
        const fixture = upstream === 'consent' ? consent : sharing;
        const url = `/v1/${upstream}/subjects/${B}/${resource}`;
        const payload = method === 'PUT' || method === 'POST' ? { value: 'x' } : undefined;
        const before = hitsTo(fixture, `/subjects/${B}/`);
        const viaGateway = await app.inject({ method, url, headers: bearer(tokens.a), ...(payload ? { payload } : {}) });
        expect(viaGateway.statusCode).toBe(403);
        expect(viaGateway.json()).toMatchObject({ code: 'PIPP_FORBIDDEN' });
        expect(hitsTo(fixture, `/subjects/${B}/`)).toBe(before);
        const direct = await fetch(`${fixture.url}${url}`, {
          method, headers: { ...bearer(tokens.a), ...(payload ? { 'content-type': 'application/json' } : {}) }, ...(payload ? { body: JSON.stringify(payload) } : {}),
        });
        expect(direct.status).toBe(403);
        const own = await app.inject({ method, url: url.replace(B, A), headers: bearer(tokens.a), ...(payload ? { payload } : {}) });
        expect(own.statusCode).toBe(200);
        expect(own.json()).toMatchObject({ subjectId: A });
      });
    }
  }

  it('cannot be bypassed by spelling the path differently', async () => {
    const tricks = [
      `/v1/consent/subjects/${A}/../${B}/profile`,
      `/v1/consent/subjects/${A}/%2e%2e/${B}/profile`,
      `/v1/consent/public/..%2Fsubjects%2F${B}%2Fprofile`,
      `/v1/consent/subjects/${B}%2Fprofile`,
      `/v1/consent//subjects/${B}/profile`,
      `/v1/consent/subjects/${B}%00/profile`,
      `/v1/consent/subjects/%E0%A4%A/profile`,
      `/v1/consent/./subjects/${B}/profile`,
    ];
    const before = hitsTo(consent, B);
    for (const url of tricks) {
      const res = await app.inject({ url, headers: bearer(tokens.a) });
      expect(res.statusCode, url).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, url).toBeLessThan(500);
      expect(isErrorShape(res.json()), url).toBe(true);
    }
    expect(hitsTo(consent, B)).toBe(before);
  });

  it('lets a service reach a subject\'s data only where the route allows services', async () => {
    const headers = { ...bearer(tokens.service), 'x-pipp-purpose': 'security' };
    expect((await app.inject({ url: `/v1/consent/subjects/${B}/profile`, headers })).statusCode).toBe(403);
    expect((await app.inject({ method: 'POST', url: `/v1/consent/subjects/${B}/events`, headers, payload: { value: 'x' } })).statusCode).toBe(200);
  });

  it('makes staff state a purpose to reach a data subject\'s data, and forwards it', async () => {
    const missing = await app.inject({ url: `/v1/consent/subjects/${B}/profile`, headers: bearer(tokens.operator) });
    expect(missing.statusCode).toBe(400);
    expect(missing.json()).toMatchObject({ code: 'PIPP_PURPOSE_REQUIRED', clause: '5.4' });
    const bad = await app.inject({ url: `/v1/consent/subjects/${B}/profile`, headers: { ...bearer(tokens.operator), 'x-pipp-purpose': 'Because I $want' } });
    expect(bad.statusCode).toBe(400);
    const badBasis = await app.inject({ url: `/v1/consent/subjects/${B}/profile`, headers: { ...bearer(tokens.operator), 'x-pipp-purpose': 'support', 'x-pipp-legal-basis': 'whim' } });
    expect(badBasis.statusCode).toBe(400);
    const ok = await app.inject({ url: `/v1/consent/subjects/${B}/profile`, headers: { ...bearer(tokens.operator), 'x-pipp-purpose': 'support-ticket', 'x-pipp-legal-basis': 'contract-necessity' } });
    expect(ok.statusCode).toBe(200);
    expect(consent.hits.at(-1)?.headers).toMatchObject({ 'x-pipp-purpose': 'support-ticket', 'x-pipp-legal-basis': 'contract-necessity' });
  });
});

describe('what reaches the service', () => {
  it('forwards the request id, the token and the verified identity, and drops identity headers a client forged', async () => {
    const res = await app.inject({
      url: '/v1/consent/echo-headers',
      headers: {
        ...bearer(tokens.a), 'x-request-id': 'trace-123', 'x-pipp-actor-role': 'dpo', 'x-pipp-actor-sub': 'dpo-1',
        'x-forwarded-for': '6.6.6.6', cookie: 'session=secret', 'x-pipp-audit-subject': B,
      },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-request-id']).toBe('trace-123');
    const seen = res.json().headers as Record<string, string>;
    expect(seen).toMatchObject({ 'x-request-id': 'trace-123', authorization: `Bearer ${tokens.a}`, 'x-pipp-actor-sub': A, 'x-pipp-actor-role': 'subject', 'x-forwarded-for': '127.0.0.1' });
    expect(seen.cookie).toBeUndefined();
    expect(seen['x-pipp-audit-subject']).toBeUndefined();
  });

  it('keeps the audit hints of a service away from the client', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/consent/public/register', payload: { phone: '+8613800138000' } });
    expect(res.statusCode).toBe(201);
    expect(res.headers['x-pipp-audit-subject']).toBeUndefined();
    expect(res.headers['x-pipp-audit-purpose']).toBeUndefined();
  });
});

describe('bodies', () => {
  const post = (payload: string, contentType?: string, token = tokens.operator) => app.inject({
    method: 'POST', url: '/v1/consent/decisions', payload,
    headers: { ...bearer(token), ...(contentType === undefined ? {} : { 'content-type': contentType }) },
  });

  it('validates bodies upstream whatever the spelling of the JSON content type', async () => {
    const invalid = JSON.stringify({ subjectId: A, purpose: 'profile', sneaky: true });
    const valid = JSON.stringify({ subjectId: A, purpose: 'profile' });
    for (const type of ['application/json', 'APPLICATION/JSON', 'Application/Json; Charset=UTF-8', 'application/json\t', ' application/json', '\tapplication/json ;  charset="utf-8"']) {
      const bad = await post(invalid, type);
      expect(bad.statusCode, JSON.stringify(type)).toBe(400);
      expect(bad.json(), JSON.stringify(type)).toMatchObject({ code: 'PIPP_VALIDATION' });
      const good = await post(valid, type);
      expect(good.statusCode, JSON.stringify(type)).toBe(200);
      expect(consent.hits.at(-1)?.headers['content-type']).toBe('application/json; charset=utf-8');
    }
  });

  it('refuses other media types, other charsets, malformed and poisoned JSON, and oversized bodies before they leave', async () => {
    const before = hitsTo(consent, '/decisions');
    const valid = JSON.stringify({ subjectId: A, purpose: 'profile' });
    const cases: [string, string | undefined, number, string][] = [
      [valid, 'text/plain', 415, 'PIPP_UNSUPPORTED_MEDIA_TYPE'],
      [valid, 'application/x-www-form-urlencoded', 415, 'PIPP_UNSUPPORTED_MEDIA_TYPE'],
      [valid, 'application/json; charset=utf-16', 415, 'PIPP_UNSUPPORTED_MEDIA_TYPE'],
      [valid, 'application/json, text/plain', 415, 'PIPP_UNSUPPORTED_MEDIA_TYPE'],
      [valid, 'text/json', 415, 'PIPP_UNSUPPORTED_MEDIA_TYPE'],
      ['{"subjectId":', 'application/json', 400, 'PIPP_VALIDATION'],
      ['', 'application/json', 400, 'PIPP_VALIDATION'],
      ['{"subjectId":"subjA1","purpose":"p","__proto__":{"role":"dpo"}}', 'application/json', 400, 'PIPP_VALIDATION'],
      ['{"subjectId":"subjA1","purpose":"p","constructor":{"prototype":{"x":1}}}', 'application/json', 400, 'PIPP_VALIDATION'],
      [JSON.stringify({ subjectId: A, purpose: 'profile', note: 'x'.repeat(4000) }), 'application/json', 413, 'PIPP_PAYLOAD_TOO_LARGE'],
      // Deep nesting (found by fuzzing: 5000 levels overflowed the stack when re-serialized, a 500).
      [`${'['.repeat(1000)}${']'.repeat(1000)}`, 'application/json', 400, 'PIPP_VALIDATION'],
      [`{"subjectId":${'{"a":'.repeat(65)}1${'}'.repeat(65)}}`, 'application/json', 400, 'PIPP_VALIDATION'],
      // A number JSON cannot carry: re-serialized, it was forwarded as null (a fresh-clone trial).
      [`{"subjectId":"${A}","purpose":"profile","n":1e400}`, 'application/json', 400, 'PIPP_VALIDATION'],
    ];
    for (const [payload, type, status, code] of cases) {
      const res = await post(payload, type);
      expect(res.statusCode, `${type} ${payload.slice(0, 30)}`).toBe(status);
      expect(res.json().code, `${type} ${payload.slice(0, 30)}`).toBe(code);
      expect(isErrorShape(res.json())).toBe(true);
    }
    expect(hitsTo(consent, '/decisions')).toBe(before);
  });

  it('refuses a body without a content type', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/consent/decisions', headers: bearer(tokens.operator), payload: Buffer.from('{"a":1}') });
    expect(res.statusCode).toBe(415);
  });
});

describe('upstream failures', () => {
  it('answers 503 with Retry-After at once when an upstream is down', async () => {
    const started = Date.now();
    const res = await app.inject({ url: '/v1/identity/public/policy' });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
    expect(res.json()).toMatchObject({ code: 'PIPP_UNAVAILABLE' });
    expect(isErrorShape(res.json())).toBe(true);
  });

  it('passes a service\'s own 503 and Retry-After on at once, without re-sending the request', async () => {
    const before = hitsTo(consent, '/unavailable');
    const started = Date.now();
    const res = await app.inject({ url: '/v1/consent/unavailable', headers: bearer(tokens.a) });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('7');
    expect(hitsTo(consent, '/unavailable')).toBe(before + 1);
    // An answer is not a failure of the connection: the circuit stays closed.
    expect((await app.inject({ url: '/v1/consent/public/policy' })).statusCode).toBe(200);
  });

  it('bounds a hanging upstream by UPSTREAM_TIMEOUT_MS (504), then opens its circuit and answers 503 without waiting', async () => {
    const slow = (ms: number) => app.inject({ url: `/v1/data-sharing/slow?ms=${ms}`, headers: bearer(tokens.a) });
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      const res = await slow(3000);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(res.statusCode).toBe(504);
      expect(res.json()).toMatchObject({ code: 'PIPP_UPSTREAM_TIMEOUT' });
      expect(res.headers['retry-after']).toBeDefined();
    }
    const started = Date.now();
    const res = await slow(0);
    expect(Date.now() - started).toBeLessThan(200);
    expect(res.statusCode).toBe(503);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(1);
    const status = await app.inject({ url: '/v1/gateway/admin/upstreams', headers: bearer(tokens.operator) });
    expect(status.json().upstreams).toEqual(expect.arrayContaining([expect.objectContaining({ service: 'data-sharing', circuit: 'open' })]));
    // Other upstreams are unaffected.
    expect((await app.inject({ url: '/v1/consent/public/policy' })).statusCode).toBe(200);
  });
});

describe('edge', () => {
  it('sets security headers on every answer', async () => {
    for (const url of ['/v1/consent/public/policy', '/v1/consent/admin/reports', '/v1/gateway/openapi.json']) {
      const res = await app.inject({ url });
      expect(res.headers['content-security-policy'], url).toContain("default-src 'none'");
      expect(res.headers['x-content-type-options'], url).toBe('nosniff');
      expect(res.headers['strict-transport-security'], url).toContain('max-age=');
      expect(res.headers['x-frame-options'], url).toBe('SAMEORIGIN');
      expect(res.headers['referrer-policy'], url).toBe('no-referrer');
    }
  });

  it('allows CORS for the configured client origins only', async () => {
    const preflight = (origin: string) => app.inject({
      method: 'OPTIONS', url: '/v1/consent/decisions',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    const allowed = await preflight('https://app.example.test');
    expect(allowed.statusCode).toBe(204);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example.test');
    const denied = await preflight('https://evil.example');
    expect(denied.headers['access-control-allow-origin']).toBeUndefined();
    const simple = await app.inject({ url: '/v1/consent/public/policy', headers: { origin: 'https://app.example.test' } });
    expect(simple.headers['access-control-allow-origin']).toBe('https://app.example.test');
    expect(simple.headers['access-control-expose-headers']).toContain('x-request-id');
  });
});

describe('combined OpenAPI document', () => {
  it('serves every reachable service\'s routes with the gateway\'s own, and validates', async () => {
    const res = await app.inject({ url: '/docs/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.paths).toHaveProperty('/v1/consent/subjects/{subjectId}/profile');
    expect(doc.paths).toHaveProperty('/v1/data-sharing/decisions');
    expect(doc.paths).toHaveProperty('/v1/gateway/admin/audit-records');
    expect(doc.paths['/v1/consent/public/policy'].get.security).toEqual([]);
    expect(doc.paths['/v1/consent/admin/reports'].get.security).toEqual([{ bearer: [] }]);
    expect(doc.paths['/v1/consent/decisions'].post['x-pipp-roles']).toEqual(['service', 'operator', 'dpo']);
    expect(doc.info['x-pipp-unavailable']).toEqual(['identity', 'retention', 'incident']);
    expect(await validateDocument(doc)).toEqual({ valid: true, errors: [] });
    expect((await app.inject({ url: '/v1/gateway/admin/upstreams', headers: bearer(tokens.dpo) })).json().openapi).toEqual({ valid: true, errors: [] });
  });

  it('serves Swagger UI at /docs', async () => {
    const res = await app.inject({ url: '/docs' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/html');
    expect(res.body).toContain('swagger');
    const json = await app.inject({ url: '/docs/json' });
    expect(json.json().paths).toHaveProperty('/v1/consent/public/policy');
  });
});

describe('function shutdown (2.4.2(5))', () => {
  it('stops collection for a shut-down function at once, and still serves reads', async () => {
    const body = { value: 'x' };
    expect((await app.inject({ method: 'POST', url: '/v1/consent/collect', headers: bearer(tokens.a), payload: body })).statusCode).toBe(200);
    const event = createEvent('privacy.function.shutdown', {
      source: 'retention',
      payload: { shutdownId: 'sd-1', functionId: 'demo-function', title: 'Demo', effectiveAt: new Date().toISOString(), action: 'erase', categories: [] },
    });
    await produceRaw(topicFor('privacy.function.shutdown', gw.env.KAFKA_TOPIC_PREFIX), [{ key: event.id, value: JSON.stringify(event) }]);
    const refused = await waitFor(async () => {
      const res = await app.inject({ method: 'POST', url: '/v1/consent/collect', headers: bearer(tokens.a), payload: body });
      return res.statusCode === 403 ? res : undefined;
    }, { what: 'shutdown applied' });
    expect(refused.json()).toMatchObject({ code: 'PIPP_FUNCTION_SHUT_DOWN', clause: '2.4.2(5)' });
    expect((await app.inject({ url: `/v1/consent/subjects/${A}/profile`, headers: bearer(tokens.a) })).statusCode).toBe(200);
    // A restarted gateway still refuses (the shutdown is stored in its own database).
    const restarted = await buildApp(loadConfig(ConfigSchema, gw.env));
    try {
      await restarted.ready();
      expect(restarted.shutdowns.isShutDown('demo-function')).toBe(true);
      expect(restarted.shutdowns.isShutDown('another-function')).toBe(false);
    } finally {
      await restarted.close();
    }
  });
});

describe('audit trail', () => {
  const query = async (qs: string, token = tokens.dpo) => {
    await app.audit.writer.flush();
    return app.inject({ url: `/v1/gateway/admin/audit-records?${qs}`, headers: bearer(token) });
  };

  it('records who reached whose data, through which route, why, and with what outcome', async () => {
    const subject = 'subjAudit9';
    const own = authority.token({ sub: subject, role: 'subject', sid: 's9' });
    const intruder = authority.token({ sub: 'subjIntruder', role: 'subject' });
    await app.inject({ url: `/v1/consent/subjects/${subject}/profile`, headers: bearer(own) });
    await app.inject({ method: 'PUT', url: `/v1/consent/subjects/${subject}/profile`, headers: bearer(intruder), payload: { value: 'x' } });
    await app.inject({ url: `/v1/consent/subjects/${subject}/consents`, headers: { ...bearer(tokens.operator), 'x-pipp-purpose': 'support-ticket', 'x-pipp-legal-basis': 'contract-necessity' } });
    await app.inject({ method: 'POST', url: '/v1/consent/decisions', headers: bearer(tokens.service), payload: { subjectId: subject, purpose: 'personalization' } });
    const res = await query(`subjectId=${subject}`);
    expect(res.statusCode).toBe(200);
    const records = res.json().records as Record<string, unknown>[];
    expect(records).toHaveLength(4);
    expect(records.map((r) => [(r.actor as { role: string }).role, r.method, r.route, r.purpose, r.outcome])).toEqual([
      ['service', 'POST', '/v1/consent/decisions', 'personalization', 'succeeded'],
      ['operator', 'GET', '/v1/consent/subjects/{subjectId}/consents', 'support-ticket', 'succeeded'],
      ['subject', 'PUT', '/v1/consent/subjects/{subjectId}/profile', undefined, 'denied'],
      ['subject', 'GET', '/v1/consent/subjects/{subjectId}/profile', 'data-subject-request', 'succeeded'],
    ]);
    expect(records[1]).toMatchObject({ actor: { role: 'operator', sub: 'op-7', sid: 'sessO' }, legalBasis: 'contract-necessity', subjectId: subject, service: 'consent', status: 200 });
    expect(records[2]).toMatchObject({ actor: { sub: 'subjIntruder' }, status: 403, code: 'PIPP_FORBIDDEN' });
    for (const r of records) expect(r).toMatchObject({ at: expect.any(String), requestId: expect.any(String), durationMs: expect.any(Number) });
  });

  it('names the route template in the record of a request refused before its token was checked', async () => {
    // A literal id that looks like a word ("general") stayed in the record of a refused request.
    const res = await app.inject({ url: '/v1/consent/admin/policies/general/versions' });
    expect(res.statusCode).toBe(401);
    const record = await waitFor(async () => {
      await app.audit.writer.flush();
      return app.audit.model.findOne({ requestId: res.headers['x-request-id'] }).lean();
    }, { what: 'the audit record' });
    expect(record).toMatchObject({ route: '/v1/consent/admin/policies/{documentId}/versions', outcome: 'unauthenticated', status: 401 });
  });

  it('records the code of an error the service answered', async () => {
    const subject = 'subjAuditCode1';
    const res = await app.inject({ method: 'POST', url: `/v1/consent/subjects/${subject}/events`, headers: bearer(authority.token({ sub: subject, role: 'subject' })), payload: { unexpected: true } });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('PIPP_VALIDATION');
    expect(res.headers['x-pipp-error-code']).toBe('PIPP_VALIDATION');
    const [record] = (await query(`subjectId=${subject}`)).json().records;
    expect(record).toMatchObject({ status: 400, code: 'PIPP_VALIDATION' });
  });

  it('records anonymous writes (registration) with the subject the service reports, and holds no PI', async () => {
    await app.inject({ method: 'POST', url: '/v1/consent/public/register', payload: { phone: '+8613800138000' } });
    await app.inject({ method: 'POST', url: '/v1/consent/public/sign-in', payload: { phone: '13800138000', code: '123456' } });
    await app.inject({ url: '/v1/consent/public/policy' });
    const registered = (await query('subjectId=newsubject1')).json().records;
    expect(registered.length).toBeGreaterThanOrEqual(1);
    expect(registered[0]).toMatchObject({ actor: { role: 'anonymous' }, route: '/v1/consent/public/register', purpose: 'account', status: 201 });
    const all = await app.audit.model.find().lean();
    expect(all.some((r) => r.route === '/v1/consent/public/sign-in')).toBe(true);
    expect(all.some((r) => r.route.includes('/public/policy'))).toBe(false);
    const text = JSON.stringify(all);
    for (const pi of ['13800138000', '123456', 'Bearer', tokens.a.slice(0, 20), '127.0.0.1']) expect(text).not.toContain(pi);
  });

  it('redacts ids and values from paths a service declared no template for', async () => {
    await app.inject({ url: '/v1/consent/lookup/13800138000/by-phone', headers: bearer(tokens.operator) });
    const [last] = (await query('actorSub=op-7&limit=1')).json().records;
    expect(last.route).toBe('/v1/consent/lookup/{id}/by-phone');
  });

  it('lets the DPO filter and page through the trail, and nobody else query it', async () => {
    for (let i = 0; i < 4; i++) await app.inject({ url: `/v1/consent/subjects/${A}/consents`, headers: bearer(tokens.a) });
    const first = (await query('actorRole=subject&limit=2')).json();
    expect(first.records).toHaveLength(2);
    const second = (await query(`actorRole=subject&limit=2&cursor=${first.nextCursor}`)).json();
    expect(second.records[0].at <= first.records[1].at).toBe(true);
    expect(second.records.map((r: { id: string }) => r.id)).not.toContain(first.records[1].id);
    expect((await query('outcome=denied')).json().records.every((r: { outcome: string }) => r.outcome === 'denied')).toBe(true);
    expect((await query('subjectId=$ne')).statusCode).toBe(400);
    expect((await query('cursor=bm90LWEtY3Vyc29y')).statusCode).toBe(400);
    expect((await query('unknown=1')).statusCode).toBe(400);
    expect((await query('', tokens.operator)).statusCode).toBe(403);
  });

  it('deletes records past their retention period (5.1) and keeps the others', async () => {
    const base = { requestId: 'r', actor: { role: 'anonymous' }, service: 'consent', method: 'POST', route: '/v1/consent/public/register', pathClass: 'public', outcome: 'succeeded', status: 201, durationMs: 1 };
    await app.audit.model.collection.insertMany([
      { ...base, _id: 'old-record', at: new Date(Date.now() - 181 * 24 * 3600 * 1000) },
      { ...base, _id: 'recent-record', at: new Date(Date.now() - 179 * 24 * 3600 * 1000) },
    ] as never[]);
    expect(await app.audit.sweep()).toBe(1);
    expect(await app.audit.model.countDocuments({ _id: { $in: ['old-record', 'recent-record'] } })).toBe(1);
    expect(await app.audit.model.exists({ _id: 'recent-record' })).toBeTruthy();
  });

  it('shows a data subject who reached their data and why, without staff account ids', async () => {
    const subject = 'subjAudit9';
    const own = authority.token({ sub: subject, role: 'subject' });
    await app.audit.writer.flush();
    const res = await app.inject({ url: `/v1/gateway/subjects/${subject}/audit-records`, headers: bearer(own) });
    expect(res.statusCode).toBe(200);
    const staff = res.json().records.find((r: { actor: { role: string } }) => r.actor.role === 'operator');
    expect(staff).toMatchObject({ purpose: 'support-ticket', actor: { role: 'operator' } });
    expect(staff.actor.sub).toBeUndefined();
    expect((await app.inject({ url: `/v1/gateway/subjects/${subject}/audit-records`, headers: bearer(tokens.a) })).statusCode).toBe(403);
    expect((await app.inject({ url: `/v1/gateway/subjects/${subject}/audit-records`, headers: bearer(tokens.operator) })).statusCode).toBe(403);
    // Reading the trail is itself audited.
    await app.audit.writer.flush();
    expect(await app.audit.model.countDocuments({ route: '/v1/gateway/subjects/{subjectId}/audit-records' })).toBeGreaterThanOrEqual(1);
  });
});
