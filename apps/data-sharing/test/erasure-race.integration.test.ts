// Sharing that races an account erasure (policy 4.1, 4.2 and its recipients paragraph; PIPL art. 47),
// with the real consent service, broker and database. A tester saw 123 share records outlive an
// erasure, in clear, their recipients never told, and a share after the erasure answered 201: an
// erasure erases what its read finds, and shares kept being recorded after that read.
import { TestAuthority, collectMessages, produceRaw, uniqueId, waitFor } from '@pipp/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createEvent, type EventPayload } from './events.js';
import { bearer, consentChange, type ConsentHandle, type DsApp, startWithConsent } from './helpers.js';
import { Receiver } from './receiver.js';

let authority: TestAuthority;
let receiver: Receiver;
let consent: ConsentHandle;
let app: DsApp;
let env: Record<string, string>;
let t: Awaited<ReturnType<typeof startWithConsent>>;

beforeAll(async () => {
  t = await startWithConsent();
  ({ authority, receiver, consent, app, env } = t);
});
afterAll(() => t?.close());

const op = () => bearer(authority, 'op-1', 'operator');
const svc = () => bearer(authority, 'identity', 'service');
const lawEnforcement = { legalBasis: 'law-enforcement', evidenceRef: 'Court order (2026) 321' };

async function recipient(path: string) {
  const res = await app.inject({
    method: 'POST', url: '/v1/data-sharing/admin/recipients', headers: op(),
    payload: {
      legalName: `Recipient ${path}`, country: 'CN', contact: { department: 'Privacy office', email: 'privacy@recipient.example' },
      purposes: ['sharing'], categories: ['profile', 'transaction-record'], ownPolicy: { applies: true, url: 'https://recipient.example/privacy' },
      attestation: { protectsNoLessThanPolicy: true, documentRef: 'DPA-9', attestedBy: 'DPO' }, webhookUrl: receiver.url(path),
    },
  });
  expect(res.statusCode, res.body).toBe(201);
  const { recipient: r, webhookSecret } = res.json() as { recipient: { id: string }; webhookSecret: string };
  receiver.expect(path, webhookSecret);
  return r.id;
}

const shareReq = (subjectId: string, payload: Record<string, unknown>, headers: Record<string, string>) =>
  app.inject({ method: 'POST', url: `/v1/data-sharing/subjects/${subjectId}/shares`, headers, payload });

async function requestErasure(requestId: string, subjectId: string) {
  const event = createEvent('privacy.erasure.requested', {
    source: 'retention', subject: subjectId, correlationId: requestId,
    payload: {
      requestId, subjectId, scope: { kind: 'account' }, ground: '4.1', origin: 'subject', requestedBy: { role: 'subject', actorId: subjectId },
      legalHolds: [], deadline: new Date(Date.now() + 15 * 86_400_000).toISOString(), attempt: 1,
    },
  });
  await produceRaw(`${env.KAFKA_TOPIC_PREFIX}privacy.erasure.requested`, [{ key: subjectId, value: JSON.stringify(event) }]);
}

type Reply = EventPayload<'privacy.erasure.participant-replied'>;
/** Waits until every participant named has replied to the request. */
async function repliesFrom(requestId: string, participants: string[]) {
  const mine = (msgs: { value: string | null }[]) => msgs.map((m) => JSON.parse(m.value!).payload as Reply).filter((p) => p.requestId === requestId);
  const msgs = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.erasure.participant-replied`, (m) => participants.every((x) => mine(m).some((p) => p.participant === x)), 120_000);
  return mine(msgs);
}

describe('sharing that races an account erasure (4.2)', () => {
  it('leaves no share record of the subject behind the erasure, tells the recipient of every share it answered 201, and refuses shares afterwards with 410', async () => {
    const subject = uniqueId('subj');
    const rid = await recipient('/race');
    receiver.answer('/race', 200);
    await consentChange(authority, consent, subject, [{ purpose: 'sharing', state: 'granted', scope: { recipientId: rid } }]);
    await waitFor(async () => (await shareReq(subject, { recipientId: rid, categories: ['profile'] }, svc())).statusCode === 201, { what: 'sharing allowed after consent', timeoutMs: 10_000 });

    // Shares keep coming while the erasure runs: on the subject's consent (a service) and on a legal
    // basis (an operator: consent's erasure does not stop those).
    let racing = true;
    const created: string[] = [];
    const racers = Array.from({ length: 4 }, async (_, k) => {
      const codes: number[] = [];
      while (racing) {
        const res = k % 2
          ? await shareReq(subject, { recipientId: rid, categories: ['transaction-record'], basis: lawEnforcement }, op())
          : await shareReq(subject, { recipientId: rid, categories: ['profile'] }, svc());
        codes.push(res.statusCode);
        if (res.statusCode === 201) created.push((res.json() as { id: string }).id);
      }
      return codes;
    });
    await waitFor(async () => (await app.models.shares.countDocuments({ subjectId: subject })) >= 8, { what: 'some shares before the erasure', timeoutMs: 30_000 });
    const requestId = uniqueId('er');
    await requestErasure(requestId, subject);
    await repliesFrom(requestId, ['consent', 'data-sharing']);
    // Shares still arrive after both replied.
    await new Promise((r) => setTimeout(r, 500));
    racing = false;
    const codes = (await Promise.all(racers)).flat();
    // Nothing of the subject's sharing outlived the erasure.
    expect(await app.models.shares.countDocuments({ subjectId: subject })).toBe(0);
    // Every share answered 201 was found by the erasure: its recipient is asked to delete it.
    const notice = await app.models.notices.findById(`${requestId}:${rid}`).lean();
    expect(notice).not.toBeNull();
    expect(created.filter((id) => !notice!.shareIds.includes(id))).toEqual([]);
    expect(codes).toContain(201);
    expect(codes).toContain(410);
    // Allowed, refused by consent once it erased the subject's consents, refused for the erasure;
    // 503 only if consent could not answer in time on a loaded machine (fails closed, records nothing).
    expect(codes.filter((c) => ![201, 403, 410, 503].includes(c))).toEqual([]);

    // Afterwards: 410 on any basis, before consent is asked; nothing stored.
    for (const [payload, headers] of [[{ recipientId: rid, categories: ['profile'], basis: lawEnforcement }, op()], [{ recipientId: rid, categories: ['profile'] }, svc()]] as const) {
      const late = await shareReq(subject, payload, headers);
      expect(late.json()).toMatchObject({ statusCode: 410, code: 'PIPP_SUBJECT_ERASED', clause: '4.2' });
    }
    expect(await app.models.shares.countDocuments({ subjectId: subject })).toBe(0);
  });

  it('takes back a share whose write the start of an account erasure overtook (marked by another instance)', async () => {
    const subject = uniqueId('subj');
    const rid = await recipient('/overtaken');
    // Not marked when the route looks first; marked by the time it looks again, after its insert.
    const isErased = vi.spyOn(app.erasedSubjects, 'isErased').mockResolvedValueOnce(false).mockResolvedValueOnce(true);
    try {
      const res = await shareReq(subject, { recipientId: rid, categories: ['profile'], basis: lawEnforcement }, op());
      expect(res.json()).toMatchObject({ statusCode: 410, code: 'PIPP_SUBJECT_ERASED', clause: '4.2' });
      expect(isErased).toHaveBeenCalledTimes(2);
    } finally {
      isErased.mockRestore();
    }
    expect(await app.models.shares.countDocuments({ subjectId: subject })).toBe(0);
    // The same for a personal release: all or nothing, the release record too.
    const other = uniqueId('subj');
    const release = vi.spyOn(app.erasedSubjects, 'isErased').mockResolvedValueOnce(false).mockResolvedValueOnce(false).mockResolvedValueOnce(false).mockResolvedValueOnce(true);
    try {
      const res = await app.inject({
        method: 'POST', url: '/v1/data-sharing/releases', headers: op(),
        payload: {
          recipientId: rid, purpose: 'sharing', name: 'Case files', attributes: { quasiIdentifiers: ['ageBand'], identifying: ['subject'] },
          rows: [{ subject, ageBand: '30-39' }, { subject: other, ageBand: '40-49' }],
          personal: { subjectColumn: 'subject', categories: ['profile'], basis: lawEnforcement },
        },
      });
      expect(res.json()).toMatchObject({ statusCode: 410, code: 'PIPP_SUBJECT_ERASED', clause: '4.2' });
    } finally {
      release.mockRestore();
    }
    expect(await app.models.shares.countDocuments({ subjectId: { $in: [subject, other] } })).toBe(0);
    expect(await app.models.releases.countDocuments({ recipientId: rid })).toBe(0);
  });
});
