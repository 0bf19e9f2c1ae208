// The gateway in front of the real PIPP services, each started in-process from its own buildApp on the
// shared broker and database: every service's API is reachable under one origin, the combined OpenAPI
// document has every service and validates, and the ownership matrix is walked over every
// `subjects/{subjectId}` route any service declares (through the gateway and directly at the service).
import { TestAuthority, dropDatabase, isolatedEnv } from '@pipp/testing';
import { loadConfig } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateDocument } from '../src/plugins/api-docs.js';
import type { OpenApiDocument } from '../src/domain/openapi.js';
import { bearer, startGateway } from './helpers.js';

const SERVICES = ['identity', 'consent', 'data-sharing', 'retention', 'incident'] as const;
const URL_VARS: Record<(typeof SERVICES)[number], string> = {
  identity: 'IDENTITY_URL', consent: 'CONSENT_URL', 'data-sharing': 'DATA_SHARING_URL', retention: 'RETENTION_URL', incident: 'INCIDENT_URL',
};

let authority: TestAuthority;
const running: { service: string; app: FastifyInstance; url: string; db: string }[] = [];
let gw: Awaited<ReturnType<typeof startGateway>>;

beforeAll(async () => {
  authority = await TestAuthority.start();
  // What any service may require (its secrets included), so that each starts as it would under `make dev`.
  const shared = {
    AUTH_JWKS_URL: authority.jwksUrl,
    IDENTITY_SIGNING_KEY: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    SERVICE_CLIENT_SECRETS: JSON.stringify(Object.fromEntries(['gateway', ...SERVICES].map((s) => [s, randomBytes(16).toString('hex')]))),
  };
  for (const service of SERVICES) {
    const { buildApp } = await import(`@pipp/${service}/app`) as { buildApp: (c: unknown) => Promise<FastifyInstance> };
    const { ConfigSchema } = await import(`@pipp/${service}/config`) as { ConfigSchema: Parameters<typeof loadConfig>[0] };
    const env = isolatedEnv(service, shared);
    const app = await buildApp(loadConfig(ConfigSchema, env));
    await app.listen({ host: '127.0.0.1', port: 0 });
    running.push({ service, app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, db: env.MONGO_DB! });
  }
  gw = await startGateway({ ...shared, ...Object.fromEntries(running.map((r) => [URL_VARS[r.service as keyof typeof URL_VARS], r.url])) });
}, 240_000);

afterAll(async () => {
  await gw?.close();
  for (const r of running) {
    await r.app.close();
    await dropDatabase(r.db);
  }
  await authority?.close();
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
    const status = (await gw.app.inject({ url: '/v1/gateway/admin/upstreams', headers: bearer(authority.token({ sub: 'op', role: 'operator' })) })).json();
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
    const tokenA = authority.token({ sub: A, role: 'subject' });
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
    // At least the gateway's own subject route; every service's join the matrix as they declare them.
    expect(checked).toBeGreaterThanOrEqual(1);
  });
});
