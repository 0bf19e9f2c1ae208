// Public disclosure (3.3), indirect collection (2.4.2(3)), other people's data (2.4.2(1)) and the
// shut-down of a function (2.4.2(5)), with the real consent service and broker.
import { TestAuthority, collectMessages, produceRaw, uniqueId, waitFor } from '@pipp/testing';
import { createEvent } from '@pipp/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, consentChange, type ConsentHandle, type DsApp, startWithConsent } from './helpers.js';

let authority: TestAuthority;
let consent: ConsentHandle;
let app: DsApp;
let env: Record<string, string>;
let t: Awaited<ReturnType<typeof startWithConsent>>;

beforeAll(async () => {
  t = await startWithConsent();
  ({ authority, consent, app, env } = t);
});
afterAll(() => t?.close());

const op = () => bearer(authority, 'op-1', 'operator');
const svc = () => bearer(authority, 'identity', 'service');
const notices = (until: (n: Record<string, unknown>[]) => boolean) =>
  collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.notification.requested`, (m) => until(m.map((x) => JSON.parse(x.value!).payload)));

describe('public disclosure (3.3)', () => {
  const disclose = (subjectId: string, payload: Record<string, unknown>, headers: Record<string, string>) =>
    app.inject({ method: 'POST', url: `/v1/data-sharing/subjects/${subjectId}/disclosures`, headers, payload });

  it('allows the subject\'s active choice, needs express consent otherwise, and shows the subject every disclosure', async () => {
    const subject = uniqueId('subj');
    const mine = await disclose(subject, { categories: ['profile'], channel: 'public profile page', ground: { ground: '3.3.1', via: 'active-choice' } }, bearer(authority, subject, 'subject'));
    expect(mine.statusCode, mine.body).toBe(201);
    expect(mine.json()).toMatchObject({ ground: '3.3.1', via: 'active-choice', clause: '3.3.1', basis: null, decidedBy: { role: 'subject', actorId: subject } });

    const notMine = await disclose(subject, { categories: ['profile'], channel: 'x', ground: { ground: '3.3.1', via: 'active-choice' } }, svc());
    expect(notMine.statusCode).toBe(403);
    expect(notMine.json()).toMatchObject({ code: 'PIPP_DISCLOSURE_REFUSED', clause: '3.3.1' });

    const noConsent = await disclose(subject, { categories: ['profile'], channel: 'leaderboard', ground: { ground: '3.3.1', via: 'express-consent' } }, svc());
    expect(noConsent.statusCode).toBe(403);
    expect(noConsent.json()).toMatchObject({ code: 'PIPP_DISCLOSURE_REFUSED', clause: '3.3.1' });
    const granted = await consentChange(authority, consent, subject, [{ purpose: 'public-disclosure', state: 'granted', scope: { disclosure: true } }]);
    const withConsent = await waitFor(async () => {
      const r = await disclose(subject, { categories: ['profile'], channel: 'leaderboard', ground: { ground: '3.3.1', via: 'express-consent' } }, svc());
      return r.statusCode === 201 ? r : undefined;
    }, { what: 'disclosure after express consent' });
    expect(withConsent.json()).toMatchObject({ basis: { kind: 'consent', consentRecordId: granted.records[0]!.recordId }, clause: '3.3.1' });

    const list = await app.inject({ url: `/v1/data-sharing/subjects/${subject}/disclosures`, headers: bearer(authority, subject, 'subject') });
    expect(list.json().disclosures).toHaveLength(2);
    const who = await app.inject({ url: `/v1/data-sharing/subjects/${subject}/recipients`, headers: bearer(authority, subject, 'subject') });
    expect(who.json().publicDisclosures).toBe(2);
  });

  it('lets an operator disclose a violation under 3.3.2 only with its reference, the measures taken and a basis, and tells the subject', async () => {
    const subject = uniqueId('subj');
    const ground = { ground: '3.3.2', violationRef: 'Case V-2026-14', violation: 'Sold counterfeit goods to 40 buyers', measuresTaken: ['store closed', 'buyers refunded'], basis: { legalBasis: 'public-interest', evidenceRef: 'Market regulator notice 55' } };
    const bySubject = await disclose(subject, { categories: ['profile'], channel: 'announcement board', ground }, bearer(authority, subject, 'subject'));
    expect(bySubject.json()).toMatchObject({ code: 'PIPP_DISCLOSURE_REFUSED', clause: '3.3.2' });
    const noMeasures = await disclose(subject, { categories: ['profile'], channel: 'announcement board', ground: { ...ground, measuresTaken: [] } }, op());
    expect(noMeasures.statusCode).toBe(422);
    expect(noMeasures.json()).toMatchObject({ clause: '3.3.2', message: expect.stringMatching(/measures/) });
    // Blank-looking text is no reference, violation or measure (zero-width space, Hangul filler).
    for (const [field, value] of [['violationRef', '\u200b'], ['violation', '\u3164\u3164'], ['measuresTaken', ['\u200b']]] as const) {
      const blank = await disclose(subject, { categories: ['profile'], channel: 'announcement board', ground: { ...ground, [field]: value } }, op());
      expect(blank.json(), field).toMatchObject({ statusCode: 400, code: 'PIPP_VALIDATION' });
    }
    const ok = await disclose(subject, { categories: ['profile'], channel: 'announcement board', ground }, op());
    expect(ok.statusCode, ok.body).toBe(201);
    expect(ok.json()).toMatchObject({ ground: '3.3.2', violationRef: 'Case V-2026-14', measuresTaken: ['store closed', 'buyers refunded'], clause: '3.3.2; 3.4.3', basis: { kind: 'legal-basis', legalBasis: 'public-interest' } });
    const sent = await notices((n) => n.some((p) => p.notificationId === `${ok.json().id}-notice`));
    expect(sent.map((m) => JSON.parse(m.value!)).find((e) => e.payload.notificationId === `${ok.json().id}-notice`)).toMatchObject({
      source: 'data-sharing', subject, payload: { audience: { subjectIds: [subject] }, clause: '3.3.2', elements: { violation: 'Sold counterfeit goods to 40 buyers', measuresTaken: 'store closed; buyers refunded' } },
    });
  });
});

describe('indirect collection (2.4.2(3))', () => {
  it('accepts PI from a third party only with its written confirmations, informs the subject, and keeps sensitive PI unusable until the subject confirms it', async () => {
    const subject = uniqueId('subj');
    const dpo = bearer(authority, 'dpo-1', 'dpo');
    const purpose = await consent.app.inject({
      method: 'PUT', url: '/v1/consent/admin/purposes/partner-verification', headers: dpo,
      payload: { title: 'Verification data from partners', kind: 'additional', policyClause: '2.4.2(3)', categories: ['profile', 'id-document'], legalBases: ['consent'], why: 'a partner verified your identity for us' },
    });
    expect(purpose.statusCode, purpose.body).toBe(201);
    const confirmation = { documentRef: 'Partner letter PL-3', subjectConsented: true, lawfulSource: true, liabilityAccepted: true, signatory: 'Partner DPO', signedAt: '2026-11-01T00:00:00.000Z' };
    const body = { source: { name: 'Partner Bank Ltd.' }, purpose: 'partner-verification', confirmation, items: [{ category: 'profile', data: { nickname: 'Li' } }, { category: 'id-document', data: { idNumber: '11010519491231002X' } }] };
    const post = (payload: Record<string, unknown>) => app.inject({ method: 'POST', url: `/v1/data-sharing/subjects/${subject}/indirect-collections`, headers: svc(), payload });

    const unconfirmed = await post({ ...body, confirmation: { ...confirmation, lawfulSource: false, liabilityAccepted: undefined } });
    expect(unconfirmed.statusCode).toBe(422);
    expect(unconfirmed.json()).toMatchObject({ code: 'PIPP_INDIRECT_COLLECTION_REFUSED', clause: '2.4.2(3)', message: expect.stringMatching(/lawfulSource.*liabilityAccepted/s) });
    const noConsent = await post(body);
    expect(noConsent.statusCode).toBe(403);
    expect(await app.models.indirect.countDocuments({ subjectId: subject })).toBe(0);

    await consentChange(authority, consent, subject, [{ purpose: 'partner-verification', state: 'granted' }, { purpose: 'partner-verification', state: 'granted', scope: { category: 'id-document' } }]);
    const ok = await waitFor(async () => { const r = await post(body); return r.statusCode === 201 ? r : undefined; }, { what: 'collection after consent' });
    const id = ok.json().id as string;
    expect(ok.json().items).toEqual([{ category: 'profile', status: 'usable', sensitive: false }, { category: 'id-document', status: 'awaiting-confirmation', sensitive: true }]);
    // Stored sealed: the ID number is nowhere in the database in clear.
    const raw = await app.mongo.connection.collection('indirectcollections').findOne({ _id: id as never });
    expect(JSON.stringify(raw)).not.toContain('11010519491231002X');

    const sent = await notices((n) => n.some((p) => p.notificationId === `${id}-notice`));
    expect(sent.map((m) => JSON.parse(m.value!).payload).find((p) => p.notificationId === `${id}-notice`)).toMatchObject({ audience: { subjectIds: [subject] }, clause: '2.4.2(3)', elements: { source: 'Partner Bank Ltd.', awaitingConfirmation: 'id-document' } });

    const dataUrl = `/v1/data-sharing/subjects/${subject}/indirect-collections/${id}/data`;
    const blocked = await app.inject({ url: `${dataUrl}?categories=id-document`, headers: svc() });
    expect(blocked.statusCode).toBe(409);
    expect(blocked.json()).toMatchObject({ code: 'PIPP_AWAITING_SUBJECT_CONFIRMATION', clause: '2.4.2(3)' });
    expect((await app.inject({ url: dataUrl, headers: svc() })).json()).toEqual({ items: [{ category: 'profile', data: { nickname: 'Li' } }] });

    // Only the subject confirms; then the sensitive item is usable.
    const byService = await app.inject({ method: 'POST', url: `/v1/data-sharing/subjects/${subject}/indirect-collections/${id}/confirmations`, headers: op(), payload: { confirm: ['id-document'] } });
    expect(byService.statusCode).toBe(403);
    const confirmed = await app.inject({ method: 'POST', url: `/v1/data-sharing/subjects/${subject}/indirect-collections/${id}/confirmations`, headers: bearer(authority, subject, 'subject'), payload: { confirm: ['id-document'] } });
    expect(confirmed.statusCode, confirmed.body).toBe(200);
    expect((await app.inject({ url: `${dataUrl}?categories=id-document`, headers: svc() })).json()).toEqual({ items: [{ category: 'id-document', data: { idNumber: '11010519491231002X' } }] });
  });

  it('deletes sensitive PI the subject declines', async () => {
    const subject = uniqueId('subj');
    await consentChange(authority, consent, subject, [{ purpose: 'partner-verification', state: 'granted' }, { purpose: 'partner-verification', state: 'granted', scope: { category: 'id-document' } }]);
    const created = await waitFor(async () => {
      const r = await app.inject({
        method: 'POST', url: `/v1/data-sharing/subjects/${subject}/indirect-collections`, headers: svc(),
        payload: { source: { name: 'P' }, purpose: 'partner-verification', confirmation: { documentRef: 'L', subjectConsented: true, lawfulSource: true, liabilityAccepted: true, signedAt: '2026-11-01T00:00:00.000Z' }, items: [{ category: 'id-document', data: { idNumber: 'X1' } }] },
      });
      return r.statusCode === 201 ? r : undefined;
    }, { what: 'collection' });
    const id = created.json().id;
    const declined = await app.inject({ method: 'POST', url: `/v1/data-sharing/subjects/${subject}/indirect-collections/${id}/confirmations`, headers: bearer(authority, subject, 'subject'), payload: { decline: ['id-document'] } });
    expect(declined.json().items).toEqual([{ category: 'id-document', status: 'declined', sensitive: true }]);
    const doc = await app.models.indirect.findById(id).lean();
    expect(doc!.items[0]!.sealed).toBeNull();
  });
});

describe('information about other people (2.4.2(1))', () => {
  it('needs the supplier\'s attestation of authorization, and stores the data sealed', async () => {
    const subject = uniqueId('subj');
    const url = `/v1/data-sharing/subjects/${subject}/other-people-data`;
    const data = { relationship: 'emergency contact', categories: ['phone-number'], data: { phone: '+8613812345678' } };
    const none = await app.inject({ method: 'POST', url, headers: bearer(authority, subject, 'subject'), payload: data });
    expect(none.statusCode).toBe(422);
    expect(none.json()).toMatchObject({ code: 'PIPP_AUTHORIZATION_ATTESTATION_REQUIRED', clause: '2.4.2(1)' });
    const ok = await app.inject({ method: 'POST', url, headers: bearer(authority, subject, 'subject'), payload: { ...data, attestation: { authorized: true, kind: 'consent-of-the-person', statement: 'My sister agreed by phone' } } });
    expect(ok.statusCode, ok.body).toBe(201);
    expect(ok.json()).toMatchObject({ data: { phone: '+8613812345678' }, attestation: { kind: 'consent-of-the-person', statement: 'My sister agreed by phone' } });
    const raw = await app.mongo.connection.collection('otherpeopledatas').findOne({ subjectId: subject });
    expect(JSON.stringify(raw)).not.toMatch(/8613812345678|sister/);
    expect((await app.inject({ url, headers: bearer(authority, subject, 'subject') })).json().records).toHaveLength(1);
  });
});

describe('function shut-down (2.4.2(5))', () => {
  it('refuses new data for a function from its effective time, citing 2.4.2(5)', async () => {
    const subject = uniqueId('subj');
    const shutdown = createEvent('privacy.function.shutdown', {
      source: 'retention',
      payload: { shutdownId: uniqueId('sd'), functionId: 'gift-cards', title: 'Gift cards', effectiveAt: new Date(Date.now() - 1000).toISOString(), action: 'erase', categories: ['profile'] },
    });
    await produceRaw(`${env.KAFKA_TOPIC_PREFIX}privacy.function.shutdown`, [{ key: shutdown.id, value: JSON.stringify(shutdown) }]);
    await waitFor(async () => app.models.shutdowns.exists({ _id: 'gift-cards' }), { what: 'the shutdown recorded' });
    const res = await app.inject({
      method: 'POST', url: `/v1/data-sharing/subjects/${subject}/other-people-data`, headers: bearer(authority, subject, 'subject'),
      payload: { relationship: 'friend', categories: ['profile'], data: { nickname: 'A' }, functionId: 'gift-cards', attestation: { authorized: true, kind: 'consent-of-the-person', statement: 'ok' } },
    });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: 'PIPP_FUNCTION_SHUT_DOWN', clause: '2.4.2(5)' });
    expect(await app.models.otherPeople.countDocuments({ subjectId: subject })).toBe(0);
  });
});
