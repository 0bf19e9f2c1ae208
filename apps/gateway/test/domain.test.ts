// The gateway's rules as pure functions: the URL convention, access decisions, content types, the
// circuit breaker, what is audited and how, and the combination of OpenAPI documents.
import { describe, expect, it } from 'vitest';
import { actsForAnother, decideAccess, type Actor } from '../src/domain/access.js';
import { mustAudit, outcomeOf, purposeOf, subjectOf } from '../src/domain/audit.js';
import { CircuitBreaker } from '../src/domain/circuit.js';
import { judgeContentType, nestsDeeperThan } from '../src/domain/content-type.js';
import { combineDocuments, refreshDelay, routesOf, type OpenApiDocument } from '../src/domain/openapi.js';
import { classifyPath, PathError, redactedPath } from '../src/domain/paths.js';

const services = new Set(['identity', 'consent', 'data-sharing']);
const subject = (sub: string): Actor => ({ sub, role: 'subject' });
const staff = (role: 'operator' | 'dpo'): Actor => ({ sub: `${role}-1`, role });
const service: Actor = { sub: 'retention', role: 'service' };

describe('classifyPath', () => {
  it('follows the URL convention', () => {
    expect(classifyPath('/v1/identity/public/sign-in', services)).toMatchObject({ service: 'identity', cls: 'public' });
    expect(classifyPath('/v1/consent/openapi.json', services)).toMatchObject({ cls: 'document' });
    expect(classifyPath('/v1/identity/.well-known/jwks.json', services)).toMatchObject({ cls: 'document' });
    expect(classifyPath('/v1/consent/.well-known/jwks.json', services)).toMatchObject({ cls: 'protected' });
    expect(classifyPath('/v1/consent/openapi.json/x', services)).toMatchObject({ cls: 'protected' });
    expect(classifyPath('/v1/data-sharing/subjects/s1/recipients', services)).toMatchObject({ cls: 'subject', subjectId: 's1' });
    expect(classifyPath('/v1/data-sharing/subjects', services)).toMatchObject({ cls: 'protected' });
    expect(classifyPath('/v1/consent/admin/purposes', services)).toMatchObject({ cls: 'admin' });
    expect(classifyPath('/v1/consent/decisions', services)).toMatchObject({ cls: 'protected' });
    expect(classifyPath('/v1/consent/PUBLIC/policy', services)).toMatchObject({ cls: 'protected' });
    expect(classifyPath('/v1/unknown/public/x', services)).toBeUndefined();
    expect(classifyPath('/v2/consent/public/x', services)).toBeUndefined();
  });

  it('decodes segments the way the upstream router will, so that classification matches routing', () => {
    expect(classifyPath('/v1/consent/%70ublic/policy', services)).toMatchObject({ cls: 'public' });
    expect(classifyPath('/v1/consent/subjects/%61bc/x', services)).toMatchObject({ cls: 'subject', subjectId: 'abc' });
  });

  it('refuses paths a proxy and its upstream could read differently', () => {
    for (const path of ['/v1/consent/public/../admin/x', '/v1/consent/public/%2e%2e/admin', '/v1/consent/./admin', '/v1/consent//admin',
      '/v1/consent/public%2Fx', '/v1/consent/public%5Cx', '/v1/consent/a%00b', '/v1/consent/%E0%A4%A', '/v1/consent/a%0Ab', 'v1/consent/x']) {
      expect(() => classifyPath(path, services), path).toThrow(PathError);
    }
    expect(() => classifyPath('/v1/consent/subjects/a+b@c/x', services)).toThrow(/subject id/);
  });

  it('keeps no value of a path in its redacted form', () => {
    const c = classifyPath('/v1/identity/subjects/s1/phones/+8613800138000/codes/123456/a@b.cn', services)!;
    expect(redactedPath(c)).toBe('/v1/identity/subjects/{subjectId}/phones/{id}/codes/{id}/{id}');
    expect(redactedPath(classifyPath('/v1/identity/public/phone/13800138000', services)!)).toBe('/v1/identity/public/phone/{id}');
  });
});

describe('decideAccess', () => {
  it('lets anyone reach public routes and documents', () => {
    expect(decideAccess({ cls: 'public', actor: undefined })).toBeUndefined();
    expect(decideAccess({ cls: 'document', actor: undefined })).toBeUndefined();
  });

  it('needs a token everywhere else', () => {
    for (const cls of ['subject', 'admin', 'protected'] as const) expect(decideAccess({ cls, actor: undefined })?.status).toBe(401);
  });

  it('lets a subject reach only their own data', () => {
    expect(decideAccess({ cls: 'subject', actor: subject('a'), subjectId: 'a' })).toBeUndefined();
    expect(decideAccess({ cls: 'subject', actor: subject('a'), subjectId: 'b' })).toMatchObject({ status: 403, clause: '5.4' });
    expect(decideAccess({ cls: 'subject', actor: subject('a'), subjectId: 'A' })?.status).toBe(403);
  });

  it('lets staff reach anyone\'s data, services only where the route allows them', () => {
    expect(decideAccess({ cls: 'subject', actor: staff('operator'), subjectId: 'b' })).toBeUndefined();
    expect(decideAccess({ cls: 'subject', actor: staff('dpo'), subjectId: 'b' })).toBeUndefined();
    expect(decideAccess({ cls: 'subject', actor: service, subjectId: 'b' })?.status).toBe(403);
    expect(decideAccess({ cls: 'subject', actor: service, subjectId: 'b', routeRoles: ['subject', 'service'] })).toBeUndefined();
    expect(decideAccess({ cls: 'subject', actor: staff('operator'), subjectId: 'b', routeRoles: ['subject', 'dpo'] })?.status).toBe(403);
    expect(decideAccess({ cls: 'subject', actor: subject('a'), subjectId: 'a', routeRoles: ['dpo'] })?.status).toBe(403);
  });

  it('keeps admin routes for staff, narrowed by the route, never widened to others', () => {
    expect(decideAccess({ cls: 'admin', actor: staff('operator') })).toBeUndefined();
    expect(decideAccess({ cls: 'admin', actor: subject('a') })?.status).toBe(403);
    expect(decideAccess({ cls: 'admin', actor: service })?.status).toBe(403);
    expect(decideAccess({ cls: 'admin', actor: staff('operator'), routeRoles: ['dpo'] })?.status).toBe(403);
    expect(decideAccess({ cls: 'admin', actor: subject('a'), routeRoles: ['subject', 'dpo'] })?.status).toBe(403);
  });

  it('applies declared roles to other routes', () => {
    expect(decideAccess({ cls: 'protected', actor: subject('a') })).toBeUndefined();
    expect(decideAccess({ cls: 'protected', actor: subject('a'), routeRoles: ['service', 'operator', 'dpo'] })?.status).toBe(403);
    expect(decideAccess({ cls: 'protected', actor: service, routeRoles: ['service', 'operator', 'dpo'] })).toBeUndefined();
    expect(decideAccess({ cls: 'protected', actor: subject('a'), routeRoles: [] })).toBeUndefined();
  });

  it('knows who acts for another subject', () => {
    expect(actsForAnother(subject('a'), 'a')).toBe(false);
    expect(actsForAnother(subject('a'), 'b')).toBe(true);
    expect(actsForAnother(staff('dpo'), 'a')).toBe(true);
    expect(actsForAnother(staff('dpo'), undefined)).toBe(false);
  });
});

describe('judgeContentType', () => {
  it('accepts JSON whatever its spelling', () => {
    for (const h of ['application/json', 'APPLICATION/JSON', ' application/json\t', 'application/json;charset=UTF-8', 'application/json; charset="utf-8"', 'application/merge-patch+json', 'application/json;']) {
      expect(judgeContentType(h), JSON.stringify(h)).toMatchObject({ ok: true });
    }
  });
  it('refuses everything else', () => {
    for (const h of [undefined, '', 'text/plain', 'text/json', 'application/json; charset=latin1', 'application/json; boundary=x', 'application/json, text/plain',
      'application/jsonx', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', 'application / json', 'json']) {
      expect(judgeContentType(h), JSON.stringify(h)).toMatchObject({ ok: false });
    }
  });
});

describe('CircuitBreaker', () => {
  it('opens after consecutive failures, answers with the wait, lets one trial through, closes on success', () => {
    let now = 0;
    const b = new CircuitBreaker({ threshold: 2, openMs: 5000, now: () => now });
    expect(b.acquire()).toBe(0);
    b.failed();
    expect(b.state).toBe('closed');
    b.succeeded();
    b.failed();
    expect(b.state).toBe('closed');
    b.failed();
    expect(b.state).toBe('open');
    expect(b.acquire()).toBe(5);
    now = 3500;
    expect(b.acquire()).toBe(2);
    now = 5000;
    expect(b.state).toBe('half-open');
    expect(b.acquire()).toBe(0);
    expect(b.acquire()).toBeGreaterThanOrEqual(1);
    b.failed();
    expect(b.state).toBe('open');
    now = 10_000;
    expect(b.acquire()).toBe(0);
    b.succeeded();
    expect(b.state).toBe('closed');
    expect(b.acquire()).toBe(0);
  });
});

describe('audit rules', () => {
  it('audits what reads or changes PI, not public documents or rate-limited requests', () => {
    expect(mustAudit('subject', 'GET', 200)).toBe(true);
    expect(mustAudit('subject', 'GET', 403)).toBe(true);
    expect(mustAudit('admin', 'GET', 200)).toBe(true);
    expect(mustAudit('protected', 'POST', 200)).toBe(true);
    expect(mustAudit('public', 'POST', 201)).toBe(true);
    expect(mustAudit('public', 'GET', 200)).toBe(false);
    expect(mustAudit('document', 'GET', 200)).toBe(false);
    expect(mustAudit('subject', 'GET', 429)).toBe(false);
  });

  it('maps statuses to outcomes', () => {
    expect([200, 201, 204, 304, 401, 403, 410, 400, 404, 409, 500, 503, 504].map(outcomeOf)).toEqual([
      'succeeded', 'succeeded', 'succeeded', 'succeeded', 'unauthenticated', 'denied', 'denied', 'rejected', 'rejected', 'rejected', 'failed', 'failed', 'failed',
    ]);
  });

  it('finds the subject from the most authoritative source, ignoring values that are not ids', () => {
    expect(subjectOf({ pathSubjectId: 'p', reportedSubjectId: 'r', body: { subjectId: 'b' }, actor: subject('a') })).toBe('p');
    expect(subjectOf({ reportedSubjectId: 'r', body: { subjectId: 'b' } })).toBe('r');
    expect(subjectOf({ body: { subjectId: 'b' }, actor: subject('a') })).toBe('b');
    expect(subjectOf({ body: { subjectId: '+8613800138000' }, actor: subject('a') })).toBe('a');
    expect(subjectOf({ body: { subjectId: { $ne: 1 } }, actor: staff('dpo') })).toBeUndefined();
    expect(subjectOf({ body: ['x'] })).toBeUndefined();
  });

  it('records the purpose stated, reported, requested, or a subject\'s own request', () => {
    expect(purposeOf({ stated: 'support', reported: 'r', body: { purpose: 'b' } })).toBe('support');
    expect(purposeOf({ reported: 'account', body: { purpose: 'b' } })).toBe('account');
    expect(purposeOf({ body: { purpose: 'personalization' } })).toBe('personalization');
    expect(purposeOf({ body: { purpose: 'Not An Id' } })).toBeUndefined();
    expect(purposeOf({ actor: subject('a'), subjectId: 'a' })).toBe('data-subject-request');
    expect(purposeOf({ actor: subject('a'), subjectId: 'b' })).toBeUndefined();
  });
});

describe('OpenAPI combination', () => {
  const doc = (service: string, extra: Record<string, Record<string, unknown>> = {}): OpenApiDocument => ({
    openapi: '3.0.3',
    info: { title: service, version: '1' },
    paths: {
      [`/v1/${service}/public/policy`]: { get: { responses: { 200: { description: 'ok', content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } } } } } },
      [`/v1/${service}/admin/x`]: { post: { 'x-pipp-roles': ['dpo', 'root'], 'x-pipp-function': 'fn', responses: { 200: { description: 'ok' } } } },
      '/v1/other/admin/steal': { get: { 'x-pipp-roles': ['subject'], responses: { 200: { description: 'ok' } } } },
      ...extra,
    },
    components: { schemas: { Thing: { type: 'object' } } },
  });

  it('reads declared roles and functions, only for the service\'s own paths', () => {
    expect(routesOf('consent', doc('consent'))).toEqual([
      { service: 'consent', method: 'GET', template: '/v1/consent/public/policy' },
      { service: 'consent', method: 'POST', template: '/v1/consent/admin/x', roles: ['dpo'], functionId: 'fn' },
    ]);
  });

  it('namespaces schemas, sets security per class and lists unavailable services', () => {
    const combined = combineDocuments({
      gateway: doc('gateway'), services: [{ service: 'consent', doc: doc('consent') }, { service: 'identity', doc: undefined }],
      errorSchema: { type: 'object' }, version: '1.0.0',
    });
    expect(Object.keys(combined.components!.schemas!)).toEqual(['Error', 'gateway.Thing', 'consent.Thing']);
    type Operation = { security?: unknown; responses: Record<string, { content: Record<string, { schema: { $ref?: string } }> } | undefined> };
    const policy = combined.paths!['/v1/consent/public/policy']!.get as unknown as Operation;
    expect(policy.responses['200']!.content['application/json']!.schema.$ref).toBe('#/components/schemas/consent.Thing');
    expect(policy.security).toEqual([]);
    expect(policy.responses['401']).toBeUndefined();
    const admin = combined.paths!['/v1/consent/admin/x']!.post as unknown as Operation;
    expect(admin.security).toEqual([{ bearer: [] }]);
    expect(admin.responses['403']!.content['application/json']!.schema.$ref).toBe('#/components/schemas/Error');
    expect(combined.paths).not.toHaveProperty('/v1/other/admin/steal');
    expect(combined.info['x-pipp-unavailable']).toEqual(['identity']);
  });

  it('says who may use a subject route: staff too, or the subject only when its roles leave staff out', () => {
    const combined = combineDocuments({
      gateway: doc('gateway'),
      services: [{ service: 'identity', doc: doc('identity', {
        '/v1/identity/subjects/{subjectId}/profile': { get: { 'x-pipp-roles': ['subject', 'operator', 'dpo'], responses: { 200: { description: 'ok' } } } },
        '/v1/identity/subjects/{subjectId}/password': { put: { 'x-pipp-roles': ['subject'], responses: { 200: { description: 'ok' } } } },
      }) }],
      errorSchema: { type: 'object' }, version: '1.0.0',
    });
    const access = (path: string, method: string) => (combined.paths![path] as Record<string, Record<string, unknown>>)[method]!['x-pipp-access'];
    expect(access('/v1/identity/subjects/{subjectId}/profile', 'get')).toMatch(/operators and the DPO for anyone's/);
    expect(access('/v1/identity/subjects/{subjectId}/password', 'put')).toBe('The data subject only, for their own id (staff cannot act here).');
  });
});

describe('nestsDeeperThan', () => {
  it('measures object and array nesting without recursion, at any depth', () => {
    expect(nestsDeeperThan({ a: [1, { b: 2 }] }, 3)).toBe(false);
    expect(nestsDeeperThan({ a: [1, { b: 2 }] }, 2)).toBe(true);
    expect(nestsDeeperThan('text', 0)).toBe(false);
    expect(nestsDeeperThan(JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`))).toBe(true);
  });
});

describe('refreshDelay', () => {
  it('fetches again within seconds while an upstream has not answered, backing off to the regular period', () => {
    expect([1, 2, 3, 4, 6, 7, 30].map((n) => refreshDelay(n, 60_000))).toEqual([1000, 2000, 4000, 8000, 32_000, 60_000, 60_000]);
    expect(refreshDelay(0, 60_000)).toBe(60_000);
  });
});

