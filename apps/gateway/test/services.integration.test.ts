// The gateway in front of the real PIPP services, each started in-process from its own buildApp on the
// shared broker and database, every one verifying tokens against identity's real JWKS: every service's
// API is reachable under one origin, a real service token from identity gets a real consent decision
// through the gateway, the combined OpenAPI document has every service and validates, and the
// ownership matrix is walked over every `subjects/{subjectId}` route any service declares (through the
// gateway and directly at the service).
import { dropDatabase, isolatedEnv, localSecrets } from '@pipp/testing';
import { loadConfig } from '@pipp/service-kit';
import { createSigner } from 'fast-jwt';
import type { FastifyInstance } from 'fastify';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateDocument } from '../src/plugins/api-docs.js';
import type { OpenApiDocument } from '../src/domain/openapi.js';
import { bearer, closedPort, startGateway } from './helpers.js';

const SERVICES = ['identity', 'consent', 'data-sharing', 'retention', 'incident'] as const;
type Service = (typeof SERVICES)[number];
const URL_VARS: Record<Service, string> = {
  identity: 'IDENTITY_URL', consent: 'CONSENT_URL', 'data-sharing': 'DATA_SHARING_URL', retention: 'RETENTION_URL', incident: 'INCIDENT_URL',
};

const running: { service: string; app: FastifyInstance; url: string; db: string }[] = [];
let gw: Awaited<ReturnType<typeof startGateway>>;
let signingKey: string;
let secrets: Record<string, string>;
let kid: string;

/** An access token exactly as identity signs it (its key, its kid, its claims). */
function accessToken(claims: { sub: string; role: string; sid?: string }) {
  const now = Math.floor(Date.now() / 1000);
  return createSigner({ key: signingKey, algorithm: 'ES256', kid })({ ...claims, iss: 'pipp-identity', aud: 'pipp', iat: now, exp: now + 300, jti: randomUUID() });
}

beforeAll(async () => {
  const local = localSecrets();
  signingKey = local.IDENTITY_SIGNING_KEY!;
  secrets = JSON.parse(local.SERVICE_CLIENT_SECRETS!) as Record<string, string>;
  // Ports first, so that every service knows every other's URL (as under `make dev`).
  const ports = Object.fromEntries(await Promise.all(SERVICES.map(async (s) => [s, await closedPort()] as const))) as Record<Service, number>;
  const urls = Object.fromEntries(SERVICES.map((s) => [URL_VARS[s], `http://127.0.0.1:${ports[s]}`]));
  // What any service may require (its secrets included), so that each starts as it would under `make dev`.
  const shared = {
    ...urls,
    AUTH_JWKS_URL: `${urls.IDENTITY_URL}/v1/identity/.well-known/jwks.json`,
    ...local,
  };
  for (const service of SERVICES) {
    const { buildApp } = await import(`@pipp/${service}/app`) as { buildApp: (c: unknown) => Promise<FastifyInstance> };
    const { ConfigSchema } = await import(`@pipp/${service}/config`) as { ConfigSchema: Parameters<typeof loadConfig>[0] };
    const env = isolatedEnv(service, { ...shared, PORT: String(ports[service]) });
    const app = await buildApp(loadConfig(ConfigSchema, env));
    await app.listen({ host: '127.0.0.1', port: ports[service] });
    running.push({ service, app, url: `http://127.0.0.1:${ports[service]}`, db: env.MONGO_DB! });
  }
  kid = ((await (await fetch(shared.AUTH_JWKS_URL)).json()) as { keys: { kid: string }[] }).keys[0]!.kid;
  gw = await startGateway(shared);
}, 300_000);

afterAll(async () => {
  await gw?.close();
  for (const r of running.reverse()) {
    await r.app.close();
    await dropDatabase(r.db);
  }
});

describe('real tokens, real decision', () => {
  it('gets a service token from identity and a consent decision from consent, through the gateway', async () => {
    const issued = await gw.app.inject({ method: 'POST', url: '/v1/identity/public/service-tokens', payload: { clientId: 'identity', clientSecret: secrets.identity } });
    expect(issued.statusCode).toBe(200);
    const { accessToken: serviceToken } = issued.json() as { accessToken: string };
    const decision = await gw.app.inject({
      method: 'POST', url: '/v1/consent/decisions', headers: bearer(serviceToken),
      payload: { subjectId: 'subjGwReal1', service: 'identity', purpose: 'personalization', categories: ['activity-log'] },
    });
    expect(decision.statusCode, decision.body).toBe(200);
    expect(decision.json()).toMatchObject({ allowed: expect.any(Boolean), clause: expect.any(String) });
    // A subject may not ask for decisions; the consent service says so and the gateway passes it on.
    const refused = await gw.app.inject({
      method: 'POST', url: '/v1/consent/decisions', headers: bearer(accessToken({ sub: 'subjGwReal1', role: 'subject', sid: 's1' })),
      payload: { subjectId: 'subjGwReal1', service: 'identity', purpose: 'personalization', categories: ['activity-log'] },
    });
    expect(refused.statusCode).toBe(403);
    // The decision was audited with the subject and purpose of the request.
    await gw.app.audit.writer.flush();
    expect(await gw.app.audit.model.exists({ subjectId: 'subjGwReal1', purpose: 'personalization', route: '/v1/consent/decisions', 'actor.role': 'service', outcome: 'succeeded' })).toBeTruthy();
    // A wrong secret is refused by identity (401), not by a 5xx anywhere.
    const wrong = await gw.app.inject({ method: 'POST', url: '/v1/identity/public/service-tokens', payload: { clientId: 'identity', clientSecret: 'nope' } });
    expect(wrong.statusCode).toBe(401);
  });

  it('refuses a token identity did not sign', async () => {
    const forged = createSigner({ key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), algorithm: 'ES256', kid })({
      sub: 'op', role: 'operator', iss: 'pipp-identity', aud: 'pipp', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 300,
    });
    expect((await gw.app.inject({ url: '/v1/consent/admin/audit', headers: bearer(forged) })).statusCode).toBe(401);
  });
});

describe('every service under one origin', () => {
  it('proxies each service\'s own OpenAPI document anonymously', async () => {
    for (const { service } of running) {
      const res = await gw.app.inject({ url: `/v1/${service}/openapi.json` });
      expect(res.statusCode, service).toBe(200);
      expect(res.json().info.title, service).toContain(service);
    }
  });

  it('combines every service\'s document into one that validates', async () => {
    const doc = (await gw.app.inject({ url: '/docs/openapi.json' })).json() as OpenApiDocument;
    expect(doc.info['x-pipp-unavailable']).toBeUndefined();
    expect(doc.tags?.map((t) => t.name)).toEqual(['gateway', ...SERVICES]);
    expect(await validateDocument(doc)).toEqual({ valid: true, errors: [] });
    const status = (await gw.app.inject({ url: '/v1/gateway/admin/upstreams', headers: bearer(accessToken({ sub: 'op', role: 'operator', sid: 'so' })) })).json();
    expect(status.upstreams.every((u: { document: { ok: boolean }; circuit: string }) => u.document.ok && u.circuit === 'closed')).toBe(true);
  });

  it('is ready once its database and broker answer', async () => {
    expect((await gw.app.inject({ url: '/readyz' })).statusCode).toBe(200);
  });
});

describe('ownership matrix over every subjects/{subjectId} route of every service', () => {
  it('never lets one subject\'s token read or change another\'s data, at the gateway or at the service', async () => {
    const doc = (await gw.app.inject({ url: '/docs/openapi.json' })).json() as OpenApiDocument;
    const A = 'subjMatrixA';
    const B = 'subjMatrixB';
    const tokenA = accessToken({ sub: A, role: 'subject', sid: 'sessMatrixA' });
    const direct = new Map(running.map((r) => [r.service, r.url]));
    let checked = 0;
    for (const [template, item] of Object.entries(doc.paths ?? {})) {
      if (!template.includes('/subjects/{subjectId}')) continue;
      for (const method of ['get', 'put', 'post', 'patch', 'delete'] as const) {
        if (!item[method]) continue;
        const path = template.replace('{subjectId}', B).replace(/\{[^}]+\}/g, 'x1');
        const service = template.split('/')[2]!;
        const payload = method === 'get' || method === 'delete' ? undefined : {};
        const viaGateway = await gw.app.inject({ method: method.toUpperCase() as 'GET', url: path, headers: bearer(tokenA), ...(payload ? { payload } : {}) });
        expect(viaGateway.statusCode, `${method} ${template} via the gateway`).toBe(403);
        const anonymous = await gw.app.inject({ method: method.toUpperCase() as 'GET', url: path, ...(payload ? { payload } : {}) });
        expect(anonymous.statusCode, `${method} ${template} anonymous`).toBe(401);
        const base = direct.get(service);
        if (base) {
          const res = await fetch(`${base}${path}`, {
            method: method.toUpperCase(), headers: { ...bearer(tokenA), ...(payload ? { 'content-type': 'application/json' } : {}) },
            ...(payload ? { body: JSON.stringify(payload) } : {}),
          });
          // 400: the service validated the (empty) body before its guard ran; nothing was read or changed either way.
          expect([400, 401, 403, 404], `${method} ${template} at ${service}`).toContain(res.status);
        }
        checked += 1;
      }
    }
    // The gateway's own subject route and every service's (identity and consent declare many already).
    expect(checked).toBeGreaterThanOrEqual(10);
  });
});
