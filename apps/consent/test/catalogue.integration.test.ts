// The catalogue as data the DPO edits (audited, versioned, invariants enforced), new purposes needing
// prior consent (2.4.2(2)), function shutdowns from the retention service (2.4.2(5)), idempotent
// registration, and the projection rebuilt from the ledger when an instance starts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Harness, ask, change, produce, register, uniqueId, waitFor, type ConsentApp } from './helpers.js';

let h: Harness;
let app: ConsentApp;
let env: Record<string, string>;
const dpo = () => h.bearer('dpo-1', 'dpo');

beforeAll(async () => {
  h = await Harness.start();
  env = h.env();
  app = await h.app(env);
});
afterAll(async () => h?.close());

const research = {
  title: 'Product research', description: 'Studying how the product is used', kind: 'additional', policyClause: null,
  categories: ['activity-log'], legalBases: ['consent'], why: 'we study usage to design new features',
};

describe('catalogue', () => {
  it('lists purposes and functions anonymously, with what each needs, why, and its standard notice', async () => {
    const res = await app.inject({ url: '/v1/consent/public/catalogue' });
    expect(res.statusCode).toBe(200);
    const { purposes, functions } = res.json();
    expect(purposes.map((p: { id: string }) => p.id).sort()).toEqual(['account', 'cross-border', 'notifications', 'personalization', 'profile', 'public-disclosure', 'security', 'sharing']);
    expect(purposes.find((p: { id: string }) => p.id === 'personalization')).toMatchObject({ kind: 'additional', policyClause: '2.4.1(2)', legalBases: ['consent'], revision: 1 });
    expect(purposes.find((p: { id: string }) => p.id === 'personalization').notice).toMatch(/refusing it never affects the basic functions/);
    expect(functions.find((f: { id: string }) => f.id === 'sign-in')).toMatchObject({ kind: 'basic', purposes: ['account', 'security'], shutDown: null });
  });

  it('a new purpose is denied until the subject consents to it (2.4.2(2))', async () => {
    const subjectId = await register(app, env);
    const put = await app.inject({ method: 'PUT', url: '/v1/consent/admin/purposes/research', headers: dpo(), payload: { ...research, expectedRevision: 0 } });
    expect(put.statusCode).toBe(201);
    expect(put.json()).toMatchObject({ id: 'research', revision: 1, status: 'active' });
    const denied = await ask(h, app, { subjectId, purpose: 'research', categories: ['activity-log'] });
    expect(denied).toMatchObject({ allowed: false, clause: '2.4.2(2)' });
    expect(denied.reason).toMatch(/never given/);
    expect((await change(h, app, subjectId, [{ purpose: 'research', state: 'granted' }])).statusCode).toBe(201);
    expect(await ask(h, app, { subjectId, purpose: 'research', categories: ['activity-log'] })).toMatchObject({ allowed: true, clause: '2.4.2(2)', basis: { kind: 'consent' } });
  });

  it('refuses edits that break the policy, stale edits and non-DPO staff; keeps an audit trail of the rest', async () => {
    const breaks = await app.inject({
      method: 'PUT', url: '/v1/consent/admin/functions/sign-in', headers: dpo(),
      payload: { title: 'Sign-in', kind: 'basic', purposes: ['account', 'personalization'], categories: ['phone-number'], why: 'x' },
    });
    expect(breaks.statusCode).toBe(409);
    expect(breaks.json()).toMatchObject({ code: 'PIPP_CATALOGUE_CONFLICT', clause: '2.1.2' });
    expect(breaks.json().details[0].message).toMatch(/refusing it would block a basic function/);

    const stale = await app.inject({ method: 'PUT', url: '/v1/consent/admin/purposes/research', headers: dpo(), payload: { ...research, expectedRevision: 0 } });
    expect(stale.statusCode).toBe(409);
    expect(stale.json().code).toBe('PIPP_STALE_REVISION');
    const operator = await app.inject({ method: 'PUT', url: '/v1/consent/admin/purposes/research', headers: h.bearer('op-1', 'operator'), payload: research });
    expect(operator.statusCode).toBe(403);
    const updated = await app.inject({ method: 'PUT', url: '/v1/consent/admin/purposes/research', headers: dpo(), payload: { ...research, why: 'better features', expectedRevision: 1 } });
    expect(updated.statusCode).toBe(200);
    expect(updated.json().revision).toBe(2);

    const trail = await app.inject({ url: '/v1/consent/admin/catalogue/changes', headers: h.bearer('op-1', 'operator') });
    expect(trail.json().changes.slice(0, 2)).toEqual([
      expect.objectContaining({ itemId: 'research', revision: 2, actor: { role: 'dpo', id: 'dpo-1' }, before: expect.objectContaining({ why: 'we study usage to design new features' }), after: expect.objectContaining({ why: 'better features' }) }),
      expect.objectContaining({ itemId: 'research', revision: 1, before: null }),
    ]);
  });

  it('bad input gets a clear 4xx and changes nothing', async () => {
    const cases = [
      { payload: { ...research, $where: '1' }, status: 400 },
      { payload: { ...research, categories: ['not-a-category'] }, status: 400 },
      { payload: { ...research, kind: 'additional', legalBases: ['contract-necessity'] }, status: 409 },
      { payload: '{"__proto__": {"x": 1}, "title": "t"}', status: 400 },
    ];
    for (const c of cases) {
      const res = await app.inject({ method: 'PUT', url: '/v1/consent/admin/purposes/bad-input', headers: { ...dpo(), 'content-type': 'application/json' }, payload: c.payload as never });
      expect(res.statusCode, JSON.stringify(c.payload)).toBe(c.status);
      expect(res.json()).toMatchObject({ statusCode: c.status, requestId: expect.any(String) });
    }
    expect((await app.inject({ url: '/v1/consent/public/catalogue/purposes/bad-input' })).statusCode).toBe(404);
  });
});

describe('function shutdown (2.4.2(5))', () => {
  it('denies processing for a function once retention announces it stopped', async () => {
    const subjectId = await register(app, env);
    await change(h, app, subjectId, [{ purpose: 'profile', state: 'granted' }]);
    const req = { subjectId, purpose: 'profile', categories: ['profile'], functionId: 'profile' };
    expect(await ask(h, app, req)).toMatchObject({ allowed: true });
    await produce(env, 'privacy.function.shutdown', 'retention', {
      shutdownId: uniqueId('sd'), functionId: 'profile', title: 'Optional profile', effectiveAt: new Date().toISOString(), action: 'erase', categories: ['profile'],
    });
    await waitFor(async () => (await ask(h, app, req)).clause === '2.4.2(5)', { what: 'the shutdown to apply' });
    expect(await ask(h, app, req)).toMatchObject({ allowed: false, clause: '2.4.2(5)' });
    expect(await ask(h, app, { subjectId, purpose: 'account', categories: ['phone-number'], functionId: 'sign-in' })).toMatchObject({ allowed: true });
    const fn = (await app.inject({ url: '/v1/consent/public/catalogue' })).json().functions.find((f: { id: string }) => f.id === 'profile');
    expect(fn.shutDown).toMatchObject({ shutdownId: expect.any(String) });
    // No function collects for the purpose any more: a grant would be a receipt for nothing (a breaker
    // helper got one); withdrawing still works.
    const grant = await change(h, app, subjectId, [{ purpose: 'profile', state: 'granted' }]);
    expect(grant.json()).toMatchObject({ statusCode: 422, clause: '2.4.2(5)', message: expect.stringMatching(/stopped operating/) });
    expect((await change(h, app, subjectId, [{ purpose: 'profile', state: 'withdrawn' }])).statusCode).toBe(201);
  });
});

describe('several instances', () => {
  it('start together on an empty database: one seed, one general policy v1, both ready', async () => {
    const fresh = h.env();
    const [one, two] = await Promise.all([h.app(fresh), h.app(fresh)]);
    const versions = (await one.inject({ url: '/v1/consent/public/policies/general/versions' })).json().versions;
    expect(versions.map((v: { version: number }) => v.version)).toEqual([1]);
    for (const app of [one, two]) {
      expect((await app.inject({ url: '/v1/consent/public/catalogue' })).json().purposes).toHaveLength(8);
      expect((await app.inject({ url: '/readyz' })).statusCode).toBe(200);
    }
    expect(await one.models.purposes.countDocuments()).toBe(8);
  });
});

describe('registration and restart', () => {
  it('records a registration once however often it is delivered, and a new instance rebuilds the same state from the ledger', async () => {
    const subjectId = uniqueId('sub');
    const payload = { subjectId, registeredAt: new Date().toISOString(), policyAcknowledged: { documentId: 'general', version: 1 } };
    await produce(env, 'privacy.subject.registered', 'identity', payload, subjectId);
    await produce(env, 'privacy.subject.registered', 'identity', payload, subjectId); // a redelivery as a new event
    await waitFor(() => app.projection.subject(subjectId)?.consents.get('notifications')?.state === 'granted', { what: 'the registration' });
    await change(h, app, subjectId, [{ purpose: 'personalization', state: 'granted' }]);
    const history = (await app.inject({ url: `/v1/consent/subjects/${subjectId}/history`, headers: h.bearer(subjectId, 'subject') })).json().records;
    expect(history.map((r: { kind: string; purpose?: string; channel: string }) => `${r.kind}:${r.purpose ?? ''}:${r.channel}`)).toEqual([
      'policy::registration', 'purpose:account:registration', 'purpose:notifications:registration', 'purpose:personalization:app',
    ]);
    expect(history.map((r: { seq: number }) => r.seq)).toEqual([1, 2, 3, 4]);

    const restarted = await h.app(env);
    expect(await ask(h, restarted, { subjectId, purpose: 'personalization', categories: ['activity-log'] })).toMatchObject({ allowed: true });
    expect(await ask(h, restarted, { subjectId, purpose: 'research', categories: ['activity-log'] })).toMatchObject({ allowed: false, clause: '2.4.2(2)' });
    await restarted.close();
  });
});
