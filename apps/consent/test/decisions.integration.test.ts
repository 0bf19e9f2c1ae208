// The decision API on the real broker and database: registration grants the basic purposes, decisions
// answer from the projection, every decision names its clause, and a withdrawal counts at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Harness, ask, change, register, type ConsentApp } from './helpers.js';

let h: Harness;
let app: ConsentApp;
let env: Record<string, string>;

beforeAll(async () => {
  h = await Harness.start();
  env = h.env();
  app = await h.app(env);
});
afterAll(async () => h?.close());

describe('decision API', () => {
  it('publishes the general policy v1 at first start', async () => {
    const res = await app.inject({ url: '/v1/consent/public/policies/general' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ documentId: 'general', version: 1, inForce: true, restrictsRights: false });
    expect(res.json().clauses.map((c: { id: string }) => c.id)).toContain('2.4.2(4)viii');
  });

  it('allows a registered subject\'s basic functions and denies additional ones until granted, naming the clause', async () => {
    const subjectId = await register(app, env);
    const signIn = await ask(h, app, { subjectId, purpose: 'account', categories: ['phone-number', 'credentials'], functionId: 'sign-in' });
    expect(signIn).toMatchObject({ allowed: true, clause: '2.1.1', basis: { kind: 'consent' }, policyVersion: 1 });

    const logs = await ask(h, app, { subjectId, purpose: 'personalization', categories: ['activity-log'], functionId: 'personalization' });
    expect(logs).toMatchObject({ allowed: false, clause: '2.1.2', basis: null });

    const granted = await change(h, app, subjectId, [{ purpose: 'personalization', state: 'granted' }]);
    expect(granted.statusCode).toBe(201);
    const recordId = granted.json().records[0].recordId;
    expect(await ask(h, app, { subjectId, purpose: 'personalization', categories: ['activity-log'] }))
      .toMatchObject({ allowed: true, clause: '2.1.2', basis: { kind: 'consent', consentRecordId: recordId } });

    const withdrawn = await change(h, app, subjectId, [{ purpose: 'personalization', state: 'withdrawn' }]);
    expect(withdrawn.statusCode).toBe(201);
    expect(await ask(h, app, { subjectId, purpose: 'personalization', categories: ['activity-log'] })).toMatchObject({ allowed: false, clause: '2.1.2' });
    // The basic function is untouched by refusing the additional one (2.1.2).
    expect(await ask(h, app, { subjectId, purpose: 'account', categories: ['phone-number'], functionId: 'sign-in' })).toMatchObject({ allowed: true });
  });

  it('answers security processing on its standing legal basis, and refuses a basis the purpose does not admit', async () => {
    const subjectId = await register(app, env);
    expect(await ask(h, app, { subjectId, purpose: 'security', categories: ['device-info'] }))
      .toMatchObject({ allowed: true, clause: '2.4.2(4)ix', basis: { kind: 'legal-basis', legalBasis: 'service-security' } });
    expect(await ask(h, app, { subjectId, purpose: 'personalization', categories: ['activity-log'], legalBasis: { legalBasis: 'contract-necessity', evidenceRef: 'tos' } }))
      .toMatchObject({ allowed: false, clause: '2.4.2(4)' });
  });

  it('refuses a service asking in another service\'s name, and unauthenticated callers', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/consent/decisions', headers: h.bearer('identity', 'service'), payload: { subjectId: 'x', service: 'data-sharing', purpose: 'account', categories: ['phone-number'] } });
    expect(res.statusCode).toBe(403);
    const anon = await app.inject({ method: 'POST', url: '/v1/consent/decisions', payload: { subjectId: 'x', service: 'identity', purpose: 'account', categories: ['phone-number'] } });
    expect(anon.statusCode).toBe(401);
    const subject = await app.inject({ method: 'POST', url: '/v1/consent/decisions', headers: h.bearer('x', 'subject'), payload: { subjectId: 'x', service: 'identity', purpose: 'account', categories: ['phone-number'] } });
    expect(subject.statusCode).toBe(403);
  });
});
