// Sharing and cross-border transfers decided by the real consent service (in-process, over HTTP, its
// events on the same real broker), on the real database (policy 3.1, 3.4, 5.3, 1.2).
import { TestAuthority, uniqueId, waitFor } from '@pipp/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, consentChange, dsEnv, startDs, type ConsentHandle, type DsApp, startWithConsent } from './helpers.js';
import { Receiver } from './receiver.js';

let authority: TestAuthority;
let receiver: Receiver;
let consent: ConsentHandle;
let app: DsApp;
let t: Awaited<ReturnType<typeof startWithConsent>>;

beforeAll(async () => {
  t = await startWithConsent();
  ({ authority, receiver, consent, app } = t);
});
afterAll(() => t?.close());

const op = () => bearer(authority, 'op-1', 'operator');
const svc = () => bearer(authority, 'identity', 'service');

async function recipient(over: Record<string, unknown> = {}) {
  const res = await app.inject({
    method: 'POST', url: '/v1/data-sharing/admin/recipients', headers: op(),
    payload: {
      legalName: 'Acme Logistics Ltd.', country: 'CN', contact: { department: 'Privacy office', email: 'privacy@acme.example' },
      purposes: ['sharing'], categories: ['profile', 'transaction-record', 'precise-location'], ownPolicy: { applies: true, url: 'https://acme.example/privacy' },
      attestation: { protectsNoLessThanPolicy: true, documentRef: 'DPA-7', attestedBy: 'DPO' }, webhookUrl: receiver.url('/acme'), ...over,
    },
  });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().recipient.id as string;
}

const shareReq = (subjectId: string, payload: Record<string, unknown>, headers = svc()) =>
  app.inject({ method: 'POST', url: `/v1/data-sharing/subjects/${subjectId}/shares`, headers, payload });

describe('sharing only with consent or a legal basis (3.1, 3.4)', () => {
  it('refuses without the subject\'s separate consent for the recipient, allows with it, records it, and stops within a second of a withdrawal', async () => {
    const subject = uniqueId('subj');
    const rid = await recipient();
    const refused = await shareReq(subject, { recipientId: rid, categories: ['profile'] });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: 'PIPP_SHARING_REFUSED', clause: '3.1.2', message: expect.stringMatching(/separate consent/) });
    expect(await app.models.shares.countDocuments({ subjectId: subject })).toBe(0);

    const granted = await consentChange(authority, consent, subject, [{ purpose: 'sharing', state: 'granted', scope: { recipientId: rid } }]);
    const ok = await waitFor(async () => {
      const r = await shareReq(subject, { recipientId: rid, categories: ['profile', 'transaction-record'] });
      return r.statusCode === 201 ? r : undefined;
    }, { what: 'sharing allowed after consent', timeoutMs: 5000 });
    const share = ok.json();
    expect(share).toMatchObject({
      subjectId: subject, recipientId: rid, recipientName: 'Acme Logistics Ltd.', purpose: 'sharing', categories: ['profile', 'transaction-record'],
      basis: { kind: 'consent', consentRecordId: granted.records[0]!.recordId }, clause: '3.1.2', crossBorder: false,
      requestedBy: { role: 'service', actorId: 'identity' }, subjectRef: app.sealer.subjectRef(rid, subject),
    });

    // "Who has my data", as the subject sees it.
    const who = await app.inject({ url: `/v1/data-sharing/subjects/${subject}/recipients`, headers: bearer(authority, subject, 'subject') });
    expect(who.statusCode).toBe(200);
    expect(who.json()).toMatchObject({
      recipients: [{ recipientId: rid, legalName: 'Acme Logistics Ltd.', country: 'CN', crossBorder: false, ownPolicy: { applies: true, url: 'https://acme.example/privacy' }, categories: ['profile', 'transaction-record'], clauses: ['3.1.2'], shares: 1 }],
      publicDisclosures: 0,
    });
    // Another subject cannot look.
    expect((await app.inject({ url: `/v1/data-sharing/subjects/${subject}/recipients`, headers: bearer(authority, 'someone-else', 'subject') })).statusCode).toBe(403);

    // Withdrawal: the consent event empties the decision cache; refused again within a second.
    await consentChange(authority, consent, subject, [{ purpose: 'sharing', state: 'withdrawn', scope: { recipientId: rid } }]);
    const started = Date.now();
    await waitFor(async () => (await shareReq(subject, { recipientId: rid, categories: ['profile'] })).statusCode === 403, { what: 'refusal after withdrawal', timeoutMs: 3000, intervalMs: 50 });
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('allows a 3.4 legal basis with evidence without consent, and refuses bases that do not permit sharing', async () => {
    const subject = uniqueId('subj');
    const rid = await recipient();
    const ok = await shareReq(subject, { recipientId: rid, categories: ['profile'], basis: { legalBasis: 'law-enforcement', evidenceRef: 'Court order (2026) 123' } }, op());
    expect(ok.statusCode, ok.body).toBe(201);
    expect(ok.json()).toMatchObject({ basis: { kind: 'legal-basis', legalBasis: 'law-enforcement', evidenceRef: 'Court order (2026) 123' }, clause: '3.4.4', requestedBy: { role: 'operator' } });
    // A retried request with the same idempotency key records once.
    const once = { recipientId: rid, categories: ['profile'], basis: { legalBasis: 'law-enforcement', evidenceRef: 'Court order (2026) 123' }, idempotencyKey: 'req-42' };
    const first = await shareReq(subject, once, op());
    const again = await shareReq(subject, once, op());
    expect([first.statusCode, again.statusCode]).toEqual([201, 200]);
    expect(again.json().id).toBe(first.json().id);
    // Concurrent repeats of a new key: one records (201), the others return that record (found by fuzzing: 409s).
    const racing = { ...once, idempotencyKey: 'req-43' };
    const raced = await Promise.all(Array.from({ length: 10 }, () => shareReq(subject, racing, op())));
    expect(raced.map((r) => r.statusCode).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
    expect(new Set(raced.map((r) => r.json().id)).size).toBe(1);
    expect(await app.models.shares.countDocuments({ subjectId: subject })).toBe(3);
    // The same key for another request is refused, not answered with the first record (a breaker helper's
    // second request, for other categories, got 200 and the profile share). Key order does not matter.
    const reordered = await shareReq(subject, { idempotencyKey: 'req-42', basis: { evidenceRef: 'Court order (2026) 123', legalBasis: 'law-enforcement' }, categories: ['profile'], recipientId: rid }, op());
    expect(reordered.statusCode).toBe(200);
    // The default purpose spelled out is the same request (it was refused as key reuse).
    const spelled = await shareReq(subject, { ...once, purpose: 'sharing' }, op());
    expect([spelled.statusCode, spelled.json().id]).toEqual([200, first.json().id]);
    const reused = await shareReq(subject, { ...once, categories: ['phone-number'] }, op());
    expect(reused.json()).toMatchObject({ statusCode: 422, code: 'PIPP_IDEMPOTENCY_KEY_REUSED', details: [{ path: '/body/idempotencyKey' }] });
    // Blank evidence is no evidence (it recorded a share on "\u200b").
    for (const evidenceRef of ['   ', '\u200b']) {
      const blank = await shareReq(subject, { recipientId: rid, categories: ['profile'], basis: { legalBasis: 'law-enforcement', evidenceRef } }, op());
      expect(blank.json(), JSON.stringify(evidenceRef)).toMatchObject({ statusCode: 400, details: [{ path: '/body/basis/evidenceRef' }] });
    }
    // A subject shares on their own consent: a legal basis is the controller's to claim.
    const own = await shareReq(subject, { recipientId: rid, categories: ['profile'], basis: { legalBasis: 'law-enforcement', evidenceRef: 'x' } }, bearer(authority, subject, 'subject'));
    expect(own.json()).toMatchObject({ statusCode: 422, code: 'PIPP_BASIS_INADMISSIBLE', clause: '3.4' });
    expect(await app.models.shares.countDocuments({ subjectId: subject })).toBe(3);
    const bad = await shareReq(subject, { recipientId: rid, categories: ['profile'], basis: { legalBasis: 'contract-necessity', evidenceRef: 'C-1' } });
    expect(bad.statusCode).toBe(422);
    expect(bad.json()).toMatchObject({ code: 'PIPP_BASIS_INADMISSIBLE', clause: '3.4' });
  });

  it('refuses what the recipient is not registered for, suspended recipients, and other subjects\' data', async () => {
    const subject = uniqueId('subj');
    const rid = await recipient();
    const outside = await shareReq(subject, { recipientId: rid, categories: ['health'], basis: { legalBasis: 'legal-obligation', evidenceRef: 'x' } });
    expect(outside.statusCode).toBe(422);
    expect(outside.json()).toMatchObject({ code: 'PIPP_RECIPIENT_INELIGIBLE', clause: '3.1', message: expect.stringMatching(/health/) });
    expect((await app.inject({ method: 'PATCH', url: `/v1/data-sharing/admin/recipients/${rid}`, headers: op(), payload: { status: 'suspended' } })).statusCode).toBe(200);
    const suspended = await shareReq(subject, { recipientId: rid, categories: ['profile'], basis: { legalBasis: 'legal-obligation', evidenceRef: 'x' } });
    expect(suspended.json()).toMatchObject({ code: 'PIPP_RECIPIENT_INELIGIBLE', message: expect.stringMatching(/suspended/) });
    const foreign = await shareReq(subject, { recipientId: rid, categories: ['profile'] }, bearer(authority, 'intruder', 'subject'));
    expect(foreign.statusCode).toBe(403);
    const unknown = await shareReq(subject, { recipientId: 'rcp_nope', categories: ['profile'] });
    expect(unknown.statusCode).toBe(404);
    const injected = await shareReq(subject, { recipientId: rid, categories: ['profile'], $where: '1' });
    expect(injected.statusCode).toBe(400);
  });
});

describe('cross-border transfers (5.3)', () => {
  it('needs a 5.3 ground for a recipient outside the home region, including Hong Kong, and records the ground', async () => {
    const subject = uniqueId('subj');
    const hk = await recipient({ legalName: 'Harbour Analytics HK', country: 'HK' });
    await consentChange(authority, consent, subject, [{ purpose: 'sharing', state: 'granted', scope: { recipientId: hk } }]);

    const noGround = await waitFor(async () => {
      const r = await shareReq(subject, { recipientId: hk, categories: ['profile'] });
      return r.statusCode === 403 && r.json().code === 'PIPP_CROSS_BORDER_REFUSED' ? r : undefined;
    }, { what: 'the 5.3 refusal' });
    expect(noGround.json()).toMatchObject({ clause: '5.3', message: expect.stringMatching(/HK.*5\.3\.1.*5\.3\.2.*5\.3\.3/s) });

    const noAuthorization = await shareReq(subject, { recipientId: hk, categories: ['profile'], transfer: { ground: '5.3.2' } });
    expect(noAuthorization.statusCode).toBe(403);
    expect(noAuthorization.json()).toMatchObject({ code: 'PIPP_CROSS_BORDER_REFUSED', clause: '5.3.2' });

    const auth = await consentChange(authority, consent, subject, [{ purpose: 'cross-border', state: 'granted', scope: { country: 'HK' } }]);
    const bySeparate = await waitFor(async () => {
      const r = await shareReq(subject, { recipientId: hk, categories: ['profile'], transfer: { ground: '5.3.2' } });
      return r.statusCode === 201 ? r : undefined;
    }, { what: 'transfer after the separate authorization' });
    expect(bySeparate.json()).toMatchObject({ crossBorder: true, country: 'HK', clause: '3.1.2', transfer: { ground: '5.3.2', clause: '5.3.2', basis: { kind: 'consent', consentRecordId: auth.records[0]!.recordId } } });

    const byLaw = await shareReq(subject, { recipientId: hk, categories: ['profile'], transfer: { ground: '5.3.1', lawCitation: 'Mutual legal assistance treaty art. 4' } });
    expect(byLaw.statusCode, byLaw.body).toBe(201);
    expect(byLaw.json().transfer).toMatchObject({ ground: '5.3.1', lawCitation: 'Mutual legal assistance treaty art. 4', basis: { kind: 'legal-basis', legalBasis: 'legal-obligation' } });

    const byContract = await shareReq(subject, { recipientId: hk, categories: ['profile'], transfer: { ground: '5.3.3', contractRef: 'Cross-border purchase order PO-88' } });
    expect(byContract.statusCode, byContract.body).toBe(201);
    expect(byContract.json().transfer).toMatchObject({ ground: '5.3.3', contractRef: 'Cross-border purchase order PO-88', basis: { kind: 'legal-basis', legalBasis: 'contract-necessity' } });

    const list = await app.inject({ url: `/v1/data-sharing/subjects/${subject}/shares?crossBorder=true`, headers: bearer(authority, subject, 'subject') });
    expect(list.json().shares.map((s: { transfer: { ground: string } }) => s.transfer.ground).sort()).toEqual(['5.3.1', '5.3.2', '5.3.3']);
    // An operator reading the subject's records leaves an audit record.
    await app.inject({ url: `/v1/data-sharing/subjects/${subject}/shares`, headers: { ...op(), 'x-access-reason': 'complaint C-9' } });
    await waitFor(async () => (await app.models.audit.countDocuments({ subjectId: subject, 'actor.role': 'operator', reason: 'complaint C-9' })) === 1, { what: 'the audit record' });
  });
});

describe('a dataset that fails the anonymization check (3.4)', () => {
  it('is released as PI only when every subject\'s sharing is allowed, and then each subject sees the recipient', async () => {
    const rid = await recipient({ categories: ['profile', 'health'] });
    const s1 = uniqueId('subj');
    const s2 = uniqueId('subj');
    const payload = {
      recipientId: rid, purpose: 'sharing', name: 'Case files',
      attributes: { quasiIdentifiers: ['ageBand'], sensitive: ['diagnosis'], identifying: ['subject'] },
      rows: [{ subject: s1, ageBand: '30-39', diagnosis: 'flu' }, { subject: s2, ageBand: '40-49', diagnosis: 'cold' }],
    };
    const noBasis = await app.inject({ method: 'POST', url: '/v1/data-sharing/releases', headers: op(), payload: { ...payload, personal: { subjectColumn: 'subject', categories: ['profile'] } } });
    expect(noBasis.statusCode).toBe(403);
    expect(noBasis.json()).toMatchObject({ code: 'PIPP_SHARING_REFUSED', clause: '3.1.2', message: expect.stringMatching(/2 of 2 subject/) });
    const ok = await app.inject({ method: 'POST', url: '/v1/data-sharing/releases', headers: op(), payload: { ...payload, personal: { subjectColumn: 'subject', categories: ['profile'], basis: { legalBasis: 'law-enforcement', evidenceRef: 'Procuratorate request 2026-77' } } } });
    expect(ok.statusCode, ok.body).toBe(201);
    expect(ok.json()).toMatchObject({ outcome: 'personal', subjects: 2, report: { passed: false } });
    for (const s of [s1, s2]) {
      const who = await app.inject({ url: `/v1/data-sharing/subjects/${s}/recipients`, headers: bearer(authority, s, 'subject') });
      expect(who.json().recipients).toEqual([expect.objectContaining({ recipientId: rid, clauses: ['3.4.4'] })]);
    }
  });
});

describe('when the consent service cannot answer', () => {
  it('fails closed with 503 and records nothing', async () => {
    const env = t.dbs.add(dsEnv(authority, { CONSENT_URL: 'http://127.0.0.1:9' }));
    const offline = await startDs(authority, env);
    try {
      const rid = (await offline.inject({
        method: 'POST', url: '/v1/data-sharing/admin/recipients', headers: op(),
        payload: { legalName: 'X', country: 'CN', contact: {}, purposes: ['sharing'], categories: ['profile'], ownPolicy: { applies: false }, attestation: { protectsNoLessThanPolicy: true, documentRef: 'd', attestedBy: 'x' }, webhookUrl: receiver.url('/x') },
      })).json().recipient.id;
      const res = await offline.inject({ method: 'POST', url: '/v1/data-sharing/subjects/s1/shares', headers: svc(), payload: { recipientId: rid, categories: ['profile'] } });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ code: 'PIPP_UNAVAILABLE' });
      expect(res.headers['retry-after']).toBeDefined();
      expect(await offline.models.shares.countDocuments({})).toBe(0);
    } finally {
      await offline.close();
    }
  });
});
