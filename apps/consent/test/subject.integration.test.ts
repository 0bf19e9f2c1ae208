// The subject's view of their consents over HTTP (PIPL art. 14–16, 44, 45): current state with each
// function's availability, full history with the texts shown, receipts, JSON export; only their own;
// staff access audited; consents refused with a clear 4xx when they cannot be given as asked.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Harness, ask, change, produce, register, uniqueId, waitFor, type ConsentApp } from './helpers.js';

let h: Harness;
let app: ConsentApp;
let env: Record<string, string>;
let subjectId: string;

beforeAll(async () => {
  h = await Harness.start();
  env = h.env();
  app = await h.app(env);
  subjectId = await register(app, env);
});
afterAll(async () => h?.close());

const me = () => h.bearer(subjectId, 'subject');

describe('grants and withdrawals', () => {
  it('records each change with the text shown, the policy version, the channel, and returns a receipt for each', async () => {
    const res = await change(h, app, subjectId, [
      { purpose: 'personalization', state: 'granted' },
      { purpose: 'sharing', scope: { recipientId: 'acme' }, state: 'granted' },
      { purpose: 'sharing', scope: { category: 'health' }, state: 'granted' },
    ], { noticeText: 'Allow personalised results and sharing your orders and health data with ACME?', language: 'en' });
    expect(res.statusCode).toBe(201);
    const { records, receipts } = res.json();
    expect(records).toHaveLength(3);
    expect(records[0]).toMatchObject({ kind: 'purpose', purpose: 'personalization', state: 'granted', consentType: 'express', channel: 'app', policyVersion: 1, recordedBy: { role: 'subject' }, notice: { sha256: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    expect(records[2]).toMatchObject({ scope: { category: 'health' }, categories: ['health'] });
    expect(receipts[1]).toMatchObject({
      version: 'KI-CR-v1.1.0', consentReceiptID: records[1].recordId, piiPrincipalId: subjectId, jurisdiction: 'CN', collectionMethod: 'app',
      services: [{ purposes: [{ thirdPartyDisclosure: true, thirdPartyName: 'acme' }] }], recordHash: records[1].hash, event: { type: 'given' },
    });
    expect(receipts[2]).toMatchObject({ sensitive: true, spiCat: ['Medical and health information'] });

    const one = await app.inject({ url: `/v1/consent/subjects/${subjectId}/receipts/${records[1].recordId}`, headers: me() });
    expect(one.json()).toEqual(receipts[1]);
  });

  it('refuses what cannot be consented to as asked, recording nothing', async () => {
    const before = (await app.inject({ url: `/v1/consent/subjects/${subjectId}/history`, headers: me() })).json().records.length;
    const cases: [Record<string, unknown>[], Record<string, unknown>, number, RegExp][] = [
      [[{ purpose: 'nope', state: 'granted' }], {}, 422, /no active purpose nope/],
      [[{ purpose: 'security', state: 'withdrawn' }], {}, 422, /rests on service-security, legal-obligation, not on consent/],
      [[{ purpose: 'sharing', state: 'granted' }], {}, 422, /separate consent per recipient/],
      [[{ purpose: 'sharing', scope: { recipientId: 'a', country: 'SG' }, state: 'granted' }], {}, 422, /at most one/],
      [[{ purpose: 'cross-border', scope: { country: 'CN' }, state: 'granted' }], {}, 422, /home region/],
      [[{ purpose: 'personalization', state: 'granted' }], { channel: 'paper' }, 422, /A subject records consent through one of: web, app, api/],
      [[{ purpose: 'personalization', state: 'granted', $set: { x: 1 } }], {}, 400, /\/body\/changes\/0/],
      [[{ purpose: 'personalization', state: 'maybe' }], {}, 400, /state/],
      [[{ purpose: 'personalization', state: 'granted' }, { purpose: 'nope', state: 'granted' }], {}, 422, /changes\/1/],
      // A withdrawal ends the whole consent: part of one is kept by granting it again for fewer categories.
      [[{ purpose: 'personalization', state: 'withdrawn', categories: ['activity-log'] }], {}, 422, /changes\/0\/categories: a withdrawal ends the whole consent/],
      // The account itself ends with the account (an erasure request), not by a withdrawal that sign-in
      // would then not honour; a batch holding one records nothing either.
      [[{ purpose: 'notifications', state: 'withdrawn' }, { purpose: 'account', state: 'withdrawn' }], {}, 409, /changes\/1: "Your account" .* close your account: POST \/v1\/retention\/subjects\/.+\/erasure-requests/],
    ];
    for (const [changes, extra, status, message] of cases) {
      const res = await change(h, app, subjectId, changes, extra);
      expect(res.statusCode, JSON.stringify(changes)).toBe(status);
      expect(res.json().message).toMatch(message);
    }
    const after = (await app.inject({ url: `/v1/consent/subjects/${subjectId}/history`, headers: me() })).json().records.length;
    expect(after).toBe(before);
  });

  it('a grant can cover only some of the purpose\'s categories; processing of the others stays refused', async () => {
    const res = await change(h, app, subjectId, [{ purpose: 'sharing', scope: { recipientId: 'bank' }, state: 'granted', categories: ['transaction-record'] }]);
    expect(res.statusCode).toBe(201);
    expect(res.json().records[0].categories).toEqual(['transaction-record']);
    const asked = { subjectId, service: 'data-sharing', purpose: 'sharing', recipientId: 'bank' };
    expect(await ask(h, app, { ...asked, categories: ['transaction-record'] })).toMatchObject({ allowed: true, clause: '3.1.2' });
    expect(await ask(h, app, { ...asked, categories: ['contact-channel'] })).toMatchObject({ allowed: false, clause: '3.1.2' });
    expect((await change(h, app, subjectId, [{ purpose: 'sharing', scope: { recipientId: 'bank' }, state: 'granted', categories: ['credentials'] }])).statusCode).toBe(422);
  });

  it('lets staff record on a subject\'s behalf only with evidence, and audits it', async () => {
    const op = h.bearer('op-7', 'operator');
    const noEvidence = await app.inject({ method: 'POST', url: `/v1/consent/subjects/${subjectId}/consents`, headers: op, payload: { channel: 'paper', changes: [{ purpose: 'profile', state: 'granted' }] } });
    expect(noEvidence.statusCode).toBe(422);
    const ok = await app.inject({ method: 'POST', url: `/v1/consent/subjects/${subjectId}/consents`, headers: op, payload: { channel: 'paper', evidenceRef: 'form-2026-0042', changes: [{ purpose: 'profile', state: 'granted' }] } });
    expect(ok.statusCode).toBe(201);
    expect(ok.json().records[0]).toMatchObject({ recordedBy: { role: 'operator', id: 'op-7' }, evidenceRef: 'form-2026-0042', channel: 'paper' });
    const audit = await app.inject({ url: `/v1/consent/admin/audit?subjectId=${subjectId}`, headers: h.bearer('dpo-1', 'dpo') });
    expect(audit.json().records[0]).toMatchObject({ actor: { role: 'operator', id: 'op-7' }, action: 'consents.recorded-on-behalf', subjectId });
    // Only for a data subject consent knows: not an id that never registered.
    const nobody = uniqueId('sub');
    for (const url of [`/v1/consent/subjects/${nobody}/consents`, `/v1/consent/subjects/${nobody}/policy-acceptances`]) {
      const payload = url.endsWith('consents') ? { channel: 'paper', evidenceRef: 'form-2026-0043', changes: [{ purpose: 'profile', state: 'granted' }] } : { channel: 'paper', evidenceRef: 'form-2026-0043', documentId: 'general', version: 1 };
      const res = await app.inject({ method: 'POST', url, headers: op, payload });
      expect(res.statusCode, url).toBe(404);
      expect(res.json().code).toBe('PIPP_SUBJECT_UNKNOWN');
    }
    expect(await app.models.records.countDocuments({ subjectId: nobody })).toBe(0);
  });

  it('records every one of many parallel changes of one subject, numbered without gaps or collisions', async () => {
    const subject = await register(app, env);
    // A collision on the next number is retried after reading the subject's latest record: none here,
    // since one instance appends a subject's records one at a time (a breaker helper saw 30 parallel
    // requests run out of retries: 500s for changes that were recorded).
    const find = vi.spyOn(app.models.records, 'find');
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) =>
      change(h, app, subject, [0, 1].map((k) => ({ purpose: 'sharing', scope: { recipientId: `parallel-${i}-${k}` }, state: 'granted' })))));
    const retries = find.mock.calls.filter((args: unknown[]) => JSON.stringify(args[0]) === JSON.stringify({ subjectId: subject })).length;
    find.mockRestore();
    expect(results.map((r) => r.statusCode)).toEqual(results.map(() => 201));
    expect(retries).toBe(0);
    const seqs = (await app.models.records.find({ subjectId: subject }, { seq: 1 }).lean()).map((r) => r.seq).sort((a, b) => a - b);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    expect(seqs.length).toBe(60 + 3); // and the registration's records
  });

  it('records the profile purpose as expressly granted when the registrant gave optional information, and only then (2.4.1(1)ii)', async () => {
    const [withProfile, without] = [uniqueId('sub'), uniqueId('sub')];
    const at = new Date().toISOString();
    await produce(env, 'privacy.subject.registered', 'identity', { subjectId: withProfile, registeredAt: at, policyAcknowledged: { documentId: 'general', version: 1 }, grantedPurposes: ['profile', 'no-such-purpose'] }, withProfile);
    await produce(env, 'privacy.subject.registered', 'identity', { subjectId: without, registeredAt: at, policyAcknowledged: { documentId: 'general', version: 1 } }, without);
    await waitFor(() => app.projection.subject(withProfile)?.consents.get('profile')?.state === 'granted', { what: 'the profile grant' });
    await waitFor(() => app.projection.subject(without)?.consents.get('account')?.state === 'granted', { what: 'the other registration' });
    const history = (await app.inject({ url: `/v1/consent/subjects/${withProfile}/history`, headers: h.bearer(withProfile, 'subject') })).json().records as { purpose?: string; channel: string; consentType: string; notice: { text: string } }[];
    const grant = history.find((r) => r.purpose === 'profile');
    expect(grant).toMatchObject({ channel: 'registration', consentType: 'express' });
    expect(grant!.notice.text).toMatch(/optional information.*Optional profile/);
    expect(history.map((r) => r.purpose ?? 'policy').sort()).toEqual(['account', 'notifications', 'policy', 'profile']);
    expect(await ask(h, app, { subjectId: withProfile, purpose: 'profile', categories: ['profile', 'credentials'] })).toMatchObject({ allowed: true });
    expect(await ask(h, app, { subjectId: without, purpose: 'profile', categories: ['profile'] })).toMatchObject({ allowed: false });
  });
});

describe('the subject\'s view', () => {
  it('shows current consents, which functions work and why not, accepted policy versions and processing without consent', async () => {
    await change(h, app, subjectId, [{ purpose: 'notifications', state: 'withdrawn' }]);
    const res = await app.inject({ url: `/v1/consent/subjects/${subjectId}/consents`, headers: me() });
    expect(res.statusCode).toBe(200);
    const view = res.json();
    expect(view.consents).toContainEqual(expect.objectContaining({ purpose: 'personalization', state: 'granted' }));
    expect(view.consents).toContainEqual(expect.objectContaining({ purpose: 'sharing', scope: { recipientId: 'acme' }, state: 'granted' }));
    expect(view.consents).toContainEqual(expect.objectContaining({ purpose: 'notifications', state: 'withdrawn' }));
    const fn = (id: string) => view.functions.find((f: { functionId: string }) => f.functionId === id);
    expect(fn('sign-in')).toMatchObject({ available: true, kind: 'basic' });
    expect(fn('notifications')).toMatchObject({ available: false, clause: '2.1.1' });
    expect(fn('notifications').reason).toMatch(/needs your .*because notices reach you/);
    expect(fn('personalization')).toMatchObject({ available: true });
    expect(fn('public-disclosure')).toMatchObject({ available: false });
    expect(view.policies).toContainEqual({ documentId: 'general', inForce: 1, acceptedExpressly: 1, accepted: 1, awaitingExpressConsent: [] });
    expect(view.processingWithoutConsent).toContainEqual(expect.objectContaining({ purpose: 'security', legalBasis: 'service-security', standing: true }));
  });

  it('lists processing allowed on a claimed legal basis, with its evidence', async () => {
    await ask(h, app, { subjectId, service: 'data-sharing', purpose: 'sharing', recipientId: 'court-7', categories: ['transaction-record'], legalBasis: { legalBasis: 'law-enforcement', evidenceRef: 'order 2026-17' } });
    await app.legalBasisLog.flush();
    const view = (await app.inject({ url: `/v1/consent/subjects/${subjectId}/consents`, headers: me() })).json();
    expect(view.processingWithoutConsent).toContainEqual(expect.objectContaining({
      purpose: 'sharing', legalBasis: 'law-enforcement', evidenceRef: 'order 2026-17', service: 'data-sharing', recipientId: 'court-7', count: 1, standing: false,
    }));
  });

  it('exports everything as a JSON download: view, full history with notice texts, and receipts', async () => {
    const res = await app.inject({ url: `/v1/consent/subjects/${subjectId}/export`, headers: me() });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-disposition']).toMatch(/attachment; filename="consent-export-/);
    const body = res.json();
    expect(body.format).toBe('pipp-consent-export/1');
    expect(body.history.length).toBe(body.receipts.length);
    expect(body.history[0]).toMatchObject({ kind: 'policy', channel: 'registration', notice: { text: expect.stringMatching(/acknowledged version 1 of the general policy/) } });
    expect(body.history.find((r: { purpose?: string }) => r.purpose === 'personalization').notice.text).toBe('Allow personalised results and sharing your orders and health data with ACME?');
    expect(body.subject.subjectId).toBe(subjectId);
  });

  it('is only the subject\'s own: another subject is refused; staff reads are audited', async () => {
    const other = h.bearer('someone-else', 'subject');
    for (const path of ['consents', 'history', 'export']) {
      expect((await app.inject({ url: `/v1/consent/subjects/${subjectId}/${path}`, headers: other })).statusCode).toBe(403);
    }
    expect((await app.inject({ method: 'POST', url: `/v1/consent/subjects/${subjectId}/consents`, headers: other, payload: { channel: 'app', changes: [{ purpose: 'personalization', state: 'withdrawn' }] } })).statusCode).toBe(403);
    expect((await app.inject({ url: `/v1/consent/subjects/${subjectId}/consents` })).statusCode).toBe(401);
    expect((await app.inject({ url: `/v1/consent/subjects/${subjectId}/consents`, headers: h.bearer('identity', 'service') })).statusCode).toBe(403);
    expect((await app.inject({ url: `/v1/consent/subjects/${subjectId}/export`, headers: h.bearer('dpo-2', 'dpo') })).statusCode).toBe(200);
    const audit = await app.inject({ url: `/v1/consent/admin/audit?subjectId=${subjectId}`, headers: h.bearer('dpo-1', 'dpo') });
    expect(audit.json().records[0]).toMatchObject({ actor: { role: 'dpo', id: 'dpo-2' }, action: 'consents.exported' });
    expect((await app.inject({ url: '/v1/consent/admin/audit', headers: h.bearer('op-1', 'operator') })).statusCode).toBe(403);
  });
});
