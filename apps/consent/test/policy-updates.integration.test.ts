// Policy documents and updates over HTTP on the real broker and database (policy preamble, 1.1, VI):
// publishing announces the specific changes with an event; a rights-restricting version denies
// processing under it until the subject consents expressly; a version that restricts nothing is
// accepted by continued use after its notice period, and that is recorded; a service-specific policy
// takes precedence for its service.
import { collectMessages } from '@pipp/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Harness, ask, change, register, waitFor, type ConsentApp } from './helpers.js';

let h: Harness;
let app: ConsentApp;
let env: Record<string, string>;
const dpo = () => h.bearer('dpo-1', 'dpo');
const TEXT = 'Personal information protection policy\n\nPreamble text.\n\n1. Scope\n\n1.1 This policy applies to us.\n\n2. Use\n\n2.1 We keep activity logs for two years.';

beforeAll(async () => {
  h = await Harness.start();
  env = h.env();
  app = await h.app(env);
});
afterAll(async () => h?.close());

const publish = (documentId: string, body: Record<string, unknown>) => app.inject({
  method: 'POST', url: `/v1/consent/admin/policies/${documentId}/versions`, headers: dpo(),
  payload: { title: 'Personal information protection policy', text: TEXT, summary: 'An update', changes: ['A change'], ...body },
});

describe('policy documents', () => {
  it('serves the general policy and any of its clauses anonymously', async () => {
    const clause = await app.inject({ url: `/v1/consent/public/policies/general/versions/1/clauses/${encodeURIComponent('2.4.2(4)')}` });
    expect(clause.statusCode).toBe(200);
    expect(clause.json().clause).toMatchObject({ id: '2.4.2(4)', parent: '2.4.2' });
    expect(clause.json().subClauses).toHaveLength(11);
    expect((await app.inject({ url: '/v1/consent/public/policies/general/versions/1/clauses/9.9' })).statusCode).toBe(404);
    expect((await app.inject({ url: '/v1/consent/public/policies/nope' })).statusCode).toBe(404);
    // A version number JavaScript cannot hold is a 400, not "no version 1e+23".
    expect((await app.inject({ url: '/v1/consent/public/policies/general/versions/99999999999999999999999' })).json()).toMatchObject({ statusCode: 400, code: 'PIPP_VALIDATION' });
    const list = await app.inject({ url: '/v1/consent/public/policies' });
    expect(list.json().documents[0]).toMatchObject({ documentId: 'general', version: 1, inForce: true });
  });

  it('refuses versions that would mislead: no changes listed, restrictions not flagged, unknown purposes, staff other than the DPO', async () => {
    const noChanges = await publish('general', { restrictsRights: false, changes: [] });
    expect(noChanges.statusCode).toBe(422);
    expect(noChanges.json()).toMatchObject({ code: 'PIPP_POLICY_INVALID', clause: 'VI' });
    const hidden = await publish('sharing-terms', { restrictsRights: false, appliesTo: { service: 'data-sharing' }, terms: { purposes: { personalization: { legalBases: ['consent', 'contract-necessity'] } } } });
    expect(hidden.statusCode).toBe(409);
    expect(hidden.json()).toMatchObject({ code: 'PIPP_POLICY_CONFLICT', clause: 'VI' });
    expect(hidden.json().message).toMatch(/would admit processing without consent on: contract-necessity/);
    expect((await publish('general', { restrictsRights: true, affectedPurposes: ['nope'] })).statusCode).toBe(422);
    const operator = await app.inject({ method: 'POST', url: '/v1/consent/admin/policies/general/versions', headers: h.bearer('op-1', 'operator'), payload: { title: 't', text: TEXT, summary: 's', restrictsRights: false } });
    expect(operator.statusCode).toBe(403);
    // Nothing was published by any of these.
    expect((await app.inject({ url: '/v1/consent/public/policies/general/versions' })).json().versions).toHaveLength(1);
  });
});

describe('updates (VI)', () => {
  it('announces a rights-restricting version and denies processing under it until the subject consents expressly', async () => {
    const subjectId = await register(app, env);
    const other = await register(app, env);
    // A registration event naming a version that does not exist (forged, or a broken producer) counts
    // as the version in force then: it must not stand as acceptance of the versions to come.
    const forged = await register(app, env, undefined, 99);
    for (const s of [subjectId, other, forged]) expect((await change(h, app, s, [{ purpose: 'personalization', state: 'granted' }])).statusCode).toBe(201);
    expect(await ask(h, app, { subjectId, purpose: 'personalization', categories: ['activity-log'] })).toMatchObject({ allowed: true });

    const res = await publish('general', {
      restrictsRights: true, affectedPurposes: ['personalization'], summary: 'Activity logs are kept for two years instead of one',
      changes: ['2.1: activity logs kept for two years'],
    });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ documentId: 'general', version: 2, restrictsRights: true, affectedPurposes: ['personalization'], inForce: true });
    const [published] = (await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.policy.published`, (m) => m.some((x) => JSON.parse(x.value!).payload.version === 2)))
      .map((m) => JSON.parse(m.value!)).filter((e) => e.payload.version === 2);
    expect(published.payload).toMatchObject({ documentId: 'general', appliesTo: 'general', restrictsRights: true, changes: ['2.1: activity logs kept for two years'], affectedPurposes: ['personalization'] });

    const denied = await ask(h, app, { subjectId, purpose: 'personalization', categories: ['activity-log'] });
    expect(denied).toMatchObject({ allowed: false, clause: 'VI', policyVersion: 2 });
    expect(denied.reason).toMatch(/kept for two years/);
    // Basic functions, untouched by the restriction, keep working.
    expect(await ask(h, app, { subjectId, purpose: 'account', categories: ['phone-number'], functionId: 'sign-in' })).toMatchObject({ allowed: true });
    const view = (await app.inject({ url: `/v1/consent/subjects/${subjectId}/consents`, headers: h.bearer(subjectId, 'subject') })).json();
    expect(view.policies).toContainEqual(expect.objectContaining({ documentId: 'general', inForce: 2, acceptedExpressly: 1, awaitingExpressConsent: [2] }));

    const accepted = await app.inject({
      method: 'POST', url: `/v1/consent/subjects/${subjectId}/policy-acceptances`, headers: h.bearer(subjectId, 'subject'),
      payload: { documentId: 'general', version: 2, channel: 'app' },
    });
    expect(accepted.statusCode).toBe(201);
    expect(accepted.json().receipt).toMatchObject({ event: { type: 'accepted' }, policy: { documentId: 'general', version: 2 }, services: [{ purposes: [{ consentType: 'EXPLICIT' }] }] });
    expect(await ask(h, app, { subjectId, purpose: 'personalization', categories: ['activity-log'] })).toMatchObject({ allowed: true, clause: '2.1.2', policyVersion: 2 });
    // Someone else's acceptance does not count for another subject.
    expect(await ask(h, app, { subjectId: other, purpose: 'personalization', categories: ['activity-log'] })).toMatchObject({ allowed: false, clause: 'VI' });
    expect(await ask(h, app, { subjectId: forged, purpose: 'personalization', categories: ['activity-log'] })).toMatchObject({ allowed: false, clause: 'VI' });
    const stats = await app.inject({ url: '/v1/consent/admin/policies/general/versions/2/acceptance', headers: h.bearer('op-1', 'operator') });
    expect(stats.json()).toMatchObject({ version: 2, restrictsRights: true, subjects: 3, acceptedExpressly: 1, acceptedByContinuedUse: 0, notYet: 2 });
  });

  it('records continued use after the notice period as acceptance of a version that restricts nothing', async () => {
    const subjectId = await register(app, env, undefined, 2);
    const res = await publish('general', { restrictsRights: false, noticeDays: 0, summary: 'Clearer wording', changes: ['5.4.2: clearer wording'] });
    expect(res.statusCode).toBe(201);
    const version = res.json().version as number;
    expect(await ask(h, app, { subjectId, purpose: 'account', categories: ['phone-number'] })).toMatchObject({ allowed: true, policyVersion: version });
    const implied = await waitFor(async () => {
      const history = (await app.inject({ url: `/v1/consent/subjects/${subjectId}/history`, headers: h.bearer(subjectId, 'subject') })).json();
      return history.records.find((r: { kind: string; document?: { version: number } }) => r.kind === 'policy' && r.document?.version === version);
    }, { what: 'the implied acceptance record' });
    expect(implied).toMatchObject({ consentType: 'implied', channel: 'continued-use', state: 'granted', document: { documentId: 'general', version } });
    expect(implied.notice.text).toMatch(/Continued use of the services after the notice period/);
    // Recorded once, however often the subject keeps using the services.
    await ask(h, app, { subjectId, purpose: 'account', categories: ['phone-number'] });
    await app.ledger.flush();
    const all = (await app.inject({ url: `/v1/consent/subjects/${subjectId}/history`, headers: h.bearer(subjectId, 'subject') })).json().records;
    expect(all.filter((r: { channel: string }) => r.channel === 'continued-use')).toHaveLength(1);
  });

  it('does not count use during the notice period as acceptance', async () => {
    const subjectId = await register(app, env, undefined, 3);
    const res = await publish('general', { restrictsRights: false, noticeDays: 30, summary: 'Another update', changes: ['x'] });
    expect(res.json().noticeEndsAt > new Date(Date.now() + 29 * 24 * 3600 * 1000).toISOString()).toBe(true);
    await ask(h, app, { subjectId, purpose: 'account', categories: ['phone-number'] });
    await app.ledger.flush();
    const history = (await app.inject({ url: `/v1/consent/subjects/${subjectId}/history`, headers: h.bearer(subjectId, 'subject') })).json().records;
    expect(history.filter((r: { channel: string }) => r.channel === 'continued-use')).toEqual([]);
  });
});

describe('service-specific policies (1.1)', () => {
  it('applies to their service and take precedence over the general terms there', async () => {
    const subjectId = await register(app, env, undefined, 4);
    await change(h, app, subjectId, [{ purpose: 'sharing', scope: { recipientId: 'acme' }, state: 'granted' }]);
    const res = await publish('data-sharing-terms', {
      title: 'Data-sharing service privacy policy', appliesTo: { service: 'data-sharing' }, restrictsRights: false, changes: [],
      summary: 'Only transaction records are shared', terms: { purposes: { sharing: { categories: ['transaction-record'] } } },
    });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ appliesTo: { service: 'data-sharing' }, version: 1 });
    const asked = { subjectId, purpose: 'sharing', recipientId: 'acme' };
    expect(await ask(h, app, { ...asked, service: 'data-sharing', categories: ['transaction-record'] })).toMatchObject({ allowed: true });
    const narrowed = await ask(h, app, { ...asked, service: 'data-sharing', categories: ['profile'] });
    expect(narrowed).toMatchObject({ allowed: false, clause: '1.1' });
    expect(narrowed.reason).toMatch(/data-sharing-terms policy v1, which takes precedence/);
    expect(await ask(h, app, { ...asked, service: 'incident', categories: ['profile'] })).toMatchObject({ allowed: true });
    // The document keeps the service it applies to.
    expect((await publish('data-sharing-terms', { appliesTo: { service: 'identity' }, restrictsRights: false })).statusCode).toBe(422);
  });
});

describe('effective times', () => {
  // Last in this file: it leaves a version of the general policy that takes effect tomorrow.
  it('takes versions into effect in their order: none before the one published ahead of it', async () => {
    const later = await publish('general', { restrictsRights: false, effectiveAt: new Date(Date.now() + 86_400_000).toISOString(), summary: 'Tomorrow', changes: ['x'] });
    expect(later.statusCode).toBe(201);
    const sooner = await publish('general', { restrictsRights: true, affectedPurposes: ['personalization'], summary: 'Now', changes: ['y'] });
    expect(sooner.statusCode).toBe(422);
    expect(sooner.json()).toMatchObject({ code: 'PIPP_POLICY_INVALID', clause: 'VI' });
    expect(sooner.json().message).toMatch(new RegExp(`cannot take effect before version ${later.json().version as number}`));
    expect((await app.inject({ url: '/v1/consent/public/policies/general/versions' })).json().versions).toHaveLength(later.json().version as number);
  });
});
