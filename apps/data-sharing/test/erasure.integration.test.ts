// The erasure saga participant (policy 4.1, 4.2 and its recipients paragraph) on the real broker and
// database, with a real HTTP receiver standing in for the recipients' webhooks: the notice is signed,
// a 500 is retried, a 2xx or a signed acknowledgment closes it, the saga hears about every pending
// recipient until none is left, a recipient holding the subject's own authorization is not asked.
import { createEvent, signatureHeaderName, type EventPayload } from './events.js';
import { TestAuthority, collectMessages, produceRaw, uniqueId, waitFor } from '@pipp/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signatureHeader } from '../src/domain/signature.js';
import { Databases, bearer, dsEnv, startDs, type DsApp } from './helpers.js';
import { Receiver } from './receiver.js';

let authority: TestAuthority;
let receiver: Receiver;
const dbs = new Databases();

beforeAll(async () => {
  authority = await TestAuthority.start();
  receiver = await Receiver.start();
});
afterAll(async () => {
  await receiver.close();
  await authority.close();
  await dbs.dropAll();
});

const op = () => bearer(authority, 'op-1', 'operator');

/** Registers a recipient through the API and teaches the receiver its secret. */
async function register(app: DsApp, path: string, over: Record<string, unknown> = {}) {
  const res = await app.inject({
    method: 'POST', url: '/v1/data-sharing/admin/recipients', headers: op(),
    payload: {
      legalName: `Recipient ${path}`, country: 'CN', contact: { department: 'Privacy office', email: 'privacy@recipient.example' },
      purposes: ['sharing'], categories: ['profile', 'phone-number', 'transaction-record'], ownPolicy: { applies: true, url: 'https://recipient.example/privacy' },
      attestation: { protectsNoLessThanPolicy: true, documentRef: 'DPA-2026-01', attestedBy: 'Data protection officer' },
      webhookUrl: receiver.url(path), ...over,
    },
  });
  expect(res.statusCode, res.body).toBe(201);
  const { recipient, webhookSecret } = res.json() as { recipient: { id: string }; webhookSecret: string };
  receiver.expect(path, webhookSecret);
  return { id: recipient.id, secret: webhookSecret };
}

/**
 * Records a share as the sharing route does after consent allowed it. (The consent service is exercised
 * by sharing.integration.test.ts; this file is about what happens to shares on erasure.)
 */
async function share(app: DsApp, subjectId: string, recipientId: string, categories: string[]) {
  const id = `shr_${uniqueId()}`;
  await app.models.shares.create({
    _id: id, subjectId, recipientId, recipientName: 'x', country: 'CN', purpose: 'sharing', categories,
    basis: { kind: 'consent', consentRecordId: 'c-1' }, clause: '3.1.2', crossBorder: false, requestedBy: { role: 'service', actorId: 'identity' },
    sharedAt: new Date(), held: null,
  });
  return id;
}

function erasureEvent(payload: Partial<EventPayload<'privacy.erasure.requested'>> & { requestId: string; subjectId: string }) {
  return createEvent('privacy.erasure.requested', {
    source: 'retention', subject: payload.subjectId, correlationId: payload.requestId,
    payload: {
      scope: { kind: 'account' }, ground: '4.1', origin: 'subject', requestedBy: { role: 'subject', actorId: payload.subjectId },
      legalHolds: [], deadline: new Date(Date.now() + 15 * 86_400_000).toISOString(), attempt: 1, ...payload,
    },
  });
}

async function request(env: Record<string, string>, event: ReturnType<typeof erasureEvent>) {
  await produceRaw(`${env.KAFKA_TOPIC_PREFIX}privacy.erasure.requested`, [{ key: event.subject!, value: JSON.stringify(event) }]);
}

type Reply = EventPayload<'privacy.erasure.participant-replied'>;
async function replies(env: Record<string, string>, requestId: string, until: (r: Reply[]) => boolean) {
  const msgs = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.erasure.participant-replied`, (m) => until(m.map((x) => JSON.parse(x.value!).payload as Reply).filter((p) => p.requestId === requestId)), 90_000);
  return msgs.map((x) => JSON.parse(x.value!)).filter((e) => e.payload.requestId === requestId);
}

describe('erasure: deletion notices to recipients', () => {
  it('erases the subject\'s sharing records, signs each notice, retries a 500, closes on 2xx or a signed acknowledgment, and re-replies until no recipient is pending', async () => {
    const env = dbs.add(dsEnv(authority));
    const app = await startDs(authority, env);
    try {
      const subject = uniqueId('subj');
      const other = uniqueId('subj');
      const a = await register(app, '/a');
      const b = await register(app, '/b');
      const c = await register(app, '/c');
      receiver.answer('/a', 500, 200);
      receiver.answer('/b', 503);
      await share(app, subject, a.id, ['profile', 'phone-number']);
      await share(app, subject, b.id, ['profile']);
      await share(app, subject, c.id, ['transaction-record']);
      const untouched = await share(app, other, a.id, ['profile']);
      // Recipient c holds the subject's own authorization: recorded, not asked (4.2).
      const ia = await app.inject({ method: 'POST', url: `/v1/data-sharing/subjects/${subject}/independent-authorizations`, headers: op(), payload: { recipientId: c.id, evidenceRef: 'C own contract 77' } });
      expect(ia.statusCode, ia.body).toBe(201);

      const requestId = uniqueId('er');
      await request(env, erasureEvent({ requestId, subjectId: subject }));

      // Recipient a: first delivery answered 500, the retry answered 200, which closes the notice.
      await waitFor(() => receiver.on('/a').length >= 2, { what: 'the retry to recipient a', timeoutMs: 20_000 });
      const [first, second] = receiver.on('/a');
      expect(first!.signatureValid && second!.signatureValid).toBe(true);
      expect(first!.answered).toBe(500);
      expect(second!.answered).toBe(200);
      expect(first!.json).toMatchObject({ type: 'pipp.deletion-notice', requestId, noticeId: `${requestId}:${a.id}`, clause: '4.2-recipients', categories: ['phone-number', 'profile'], attempt: 1 });
      expect(second!.json).toMatchObject({ noticeId: first!.json.noticeId, attempt: 2 });
      // The recipient gets its own pseudonym of the subject, never our subject id.
      expect(first!.body).not.toContain(subject);
      expect(first!.json.subjectRef).toBe(app.sealer.subjectRef(a.id, subject));
      expect(first!.json.subjectRef).not.toBe(app.sealer.subjectRef(b.id, subject));
      expect(receiver.on('/c')).toHaveLength(0);

      // The saga hears the counts and that b is still pending.
      const pendingB = await replies(env, requestId, (r) => r.some((p) => p.pendingRecipients?.join() === b.id));
      const last = pendingB.at(-1)!;
      expect(last).toMatchObject({ type: 'privacy.erasure.participant-replied', source: 'data-sharing', subject, correlationId: requestId });
      expect(last.payload).toMatchObject({ participant: 'data-sharing', status: 'completed', attempt: 1, counts: { erased: 4, anonymized: 0, kept: 0 }, kept: [] });

      // b acknowledges by a signed call; a wrong signature is refused and changes nothing.
      const noticeB = `${requestId}:${b.id}`;
      const body = JSON.stringify({ noticeId: noticeB, deletedAt: new Date().toISOString() });
      const ackUrl = `/v1/data-sharing/public/deletion-notices/${encodeURIComponent(noticeB)}/acknowledgments`;
      const forged = await app.inject({ method: 'POST', url: ackUrl, headers: { 'content-type': 'application/json', 'x-pipp-signature': signatureHeader(a.secret, body) }, payload: body });
      expect(forged.statusCode).toBe(401);
      expect(forged.json()).toMatchObject({ code: 'PIPP_SIGNATURE_INVALID' });
      expect((await app.models.notices.findById(noticeB).lean())!.status).toBe('pending');
      const ack = await app.inject({ method: 'POST', url: ackUrl, headers: { 'content-type': 'application/json', [signatureHeaderName]: signatureHeader(b.secret, body) }, payload: body });
      expect(ack.statusCode, ack.body).toBe(200);
      expect(ack.json()).toMatchObject({ id: noticeB, status: 'acknowledged' });

      const closed = await replies(env, requestId, (r) => r.some((p) => p.pendingRecipients?.length === 0));
      expect(closed.at(-1)!.payload).toMatchObject({ pendingRecipients: [], counts: { erased: 4 } });

      // Nothing of the subject's sharing remains; the other subject's record is untouched.
      expect(await app.models.shares.countDocuments({ subjectId: subject })).toBe(0);
      expect(await app.models.independent.countDocuments({ subjectId: subject })).toBe(0);
      expect(await app.models.shares.exists({ _id: untouched })).toBeTruthy();
      const status = await app.inject({ url: `/v1/data-sharing/admin/erasures/${requestId}`, headers: op() });
      expect(status.json()).toMatchObject({
        pendingRecipients: [],
        recipients: expect.arrayContaining([
          expect.objectContaining({ recipientId: c.id, status: 'not-asked' }),
          expect.objectContaining({ recipientId: a.id, status: 'notified', noticeStatus: 'acknowledged' }),
        ]),
      });
      const noticeA = await app.models.notices.findById(`${requestId}:${a.id}`).lean();
      expect(noticeA).toMatchObject({ status: 'acknowledged', acknowledgedVia: 'webhook-2xx', attempts: 2 });
      expect(noticeA!.history.map((h) => h.outcome)).toEqual(['HTTP 500', 'acknowledged']);
      // The subject sees the notices sent on their behalf.
      const mine = await app.inject({ url: `/v1/data-sharing/subjects/${subject}/deletion-notices`, headers: bearer(authority, subject, 'subject') });
      expect(mine.json().notices.map((n: { status: string }) => n.status)).toEqual(['acknowledged', 'acknowledged']);

      // A redelivery (higher attempt) changes nothing and replies the same counts again.
      const before = receiver.received.length;
      await request(env, erasureEvent({ requestId, subjectId: subject, attempt: 2 }));
      const again = await replies(env, requestId, (r) => r.some((p) => p.attempt === 2));
      expect(again.at(-1)!.payload).toMatchObject({ attempt: 2, counts: { erased: 4, anonymized: 0, kept: 0 }, pendingRecipients: [] });
      expect(receiver.received.length).toBe(before);
      expect(await app.models.notices.countDocuments({ requestId })).toBe(2);
    } finally {
      await app.close();
    }
  });

  it('keeps sharing records under a legal hold, isolated from every read, still notifies the recipient, and says what it kept and why', async () => {
    const env = dbs.add(dsEnv(authority));
    const app = await startDs(authority, env);
    try {
      const subject = uniqueId('subj');
      const d = await register(app, '/d');
      receiver.answer('/d', 204);
      await share(app, subject, d.id, ['profile']);
      const requestId = uniqueId('er');
      const purgeAt = new Date(Date.now() + 3 * 365 * 86_400_000).toISOString();
      await request(env, erasureEvent({ requestId, subjectId: subject, legalHolds: [{ category: 'sharing-record', legalBasis: 'legal-obligation', evidenceRef: 'E-Commerce Law art. 31', purgeAt }] }));
      const done = await replies(env, requestId, (r) => r.some((p) => p.pendingRecipients?.length === 0));
      expect(done.at(-1)!.payload).toMatchObject({
        counts: { erased: 0, anonymized: 0, kept: 1 },
        kept: [{ category: 'sharing-record', legalBasis: 'legal-obligation', purgeAt, reason: expect.stringMatching(/E-Commerce Law art\. 31/) }],
      });
      expect(receiver.on('/d')).toHaveLength(1);
      // Staff reading the erased subject's records are told the account was erased (an empty list read
      // as "never shared"); the deletion notices stay readable.
      for (const what of ['shares', 'recipients', 'disclosures', 'indirect-collections', 'other-people-data', 'independent-authorizations']) {
        const visible = await app.inject({ url: `/v1/data-sharing/subjects/${subject}/${what}`, headers: op() });
        expect(visible.json(), what).toMatchObject({ statusCode: 410, code: 'PIPP_SUBJECT_ERASED', clause: '4.2' });
      }
      expect((await app.inject({ url: `/v1/data-sharing/subjects/${subject}/deletion-notices`, headers: op() })).statusCode).toBe(200);
      const held = await app.models.shares.find({ subjectId: subject }).lean();
      expect(held).toHaveLength(1);
      expect(held[0]!.held).toMatchObject({ legalBasis: 'legal-obligation', evidenceRef: 'E-Commerce Law art. 31' });
    } finally {
      await app.close();
    }
  });

  it('leaves no document holding the subject\'s data after an account erasure, and purges kept records when their date comes', async () => {
    const env = dbs.add(dsEnv(authority));
    const app = await startDs(authority, env);
    try {
      const subject = uniqueId('subj');
      const f = await register(app, '/f');
      receiver.answer('/f', 200);
      await share(app, subject, f.id, ['profile']);
      const me = bearer(authority, subject, 'subject');
      expect((await app.inject({ method: 'POST', url: `/v1/data-sharing/subjects/${subject}/other-people-data`, headers: me, payload: { relationship: 'spouse', categories: ['phone-number'], data: { phone: '+8613900001111', name: 'Wang Fang' }, attestation: { authorized: true, kind: 'consent-of-the-person', statement: 'She agreed in writing' } } })).statusCode).toBe(201);
      expect((await app.inject({ method: 'POST', url: `/v1/data-sharing/subjects/${subject}/disclosures`, headers: me, payload: { categories: ['profile'], channel: 'Public profile of Wang Wei', ground: { ground: '3.3.1', via: 'active-choice' } } })).statusCode).toBe(201);
      await app.models.indirect.create({
        _id: `ind_${uniqueId()}`, subjectId: subject, source: { name: 'Partner' }, purpose: 'profile',
        confirmation: { documentRef: 'L', subjectConsented: true, lawfulSource: true, liabilityAccepted: true, signedAt: new Date() },
        items: [{ category: 'profile', status: 'usable', sealed: app.sealer.seal(JSON.stringify({ nickname: 'Wang Wei' })) }],
        basis: null, receivedBy: { role: 'service', actorId: 'identity' }, receivedAt: new Date(), rev: 0, held: null,
      });
      const requestId = uniqueId('er');
      await request(env, erasureEvent({ requestId, subjectId: subject }));
      const done = await replies(env, requestId, (r) => r.some((p) => p.pendingRecipients?.length === 0));
      expect(done.at(-1)!.payload.counts).toEqual({ erased: 4, anonymized: 0, kept: 0 });
      // Every collection, read directly: nothing of the subject but the erasure ledger, the notices and audit ids.
      const db = app.mongo.connection.db!;
      for (const c of await db.listCollections().toArray()) {
        const docs = await db.collection(c.name).find({}).toArray();
        const text = JSON.stringify(docs);
        expect(text, c.name).not.toMatch(/8613900001111|Wang Fang|Wang Wei|agreed in writing/);
        if (!['erasures', 'deletionnotices', 'auditrecords', 'processed_events'].includes(c.name)) expect(text, c.name).not.toContain(subject);
      }

      // A kept record whose purge date came is purged by a purge request, without notifying the recipient again.
      const held = uniqueId('subj');
      await share(app, held, f.id, ['profile']);
      const first = uniqueId('er');
      await request(env, erasureEvent({ requestId: first, subjectId: held, legalHolds: [{ category: 'sharing-record', legalBasis: 'legal-obligation', evidenceRef: 'Law Z', purgeAt: new Date(Date.now() + 60_000).toISOString() }] }));
      await replies(env, first, (r) => r.some((p) => p.pendingRecipients?.length === 0));
      const calls = receiver.on('/f').length;
      await app.models.shares.updateMany({ subjectId: held }, { $set: { 'held.purgeAt': new Date(Date.now() - 1000) } });
      const purge = uniqueId('er');
      await request(env, erasureEvent({ requestId: purge, subjectId: held, scope: { kind: 'categories', categories: ['sharing-record'] }, purgeIsolated: true }));
      const purged = await replies(env, purge, (r) => r.length > 0);
      expect(purged.at(-1)!.payload).toMatchObject({ counts: { erased: 1, kept: 0 }, pendingRecipients: [] });
      expect(await app.models.shares.countDocuments({ subjectId: held })).toBe(0);
      expect(receiver.on('/f').length).toBe(calls);
    } finally {
      await app.close();
    }
  });

  it('answers at once for a subject it holds nothing about, ignores requests for other participants, and replies again to a redelivery', async () => {
    const env = dbs.add(dsEnv(authority));
    const app = await startDs(authority, env);
    try {
      const subject = uniqueId('subj');
      const skipped = uniqueId('er');
      const requestId = uniqueId('er');
      await request(env, erasureEvent({ requestId: skipped, subjectId: subject, participants: ['identity'] }));
      await request(env, erasureEvent({ requestId, subjectId: subject }));
      const first = await replies(env, requestId, (r) => r.length >= 1);
      expect(first[0]!.payload).toEqual({ requestId, subjectId: subject, participant: 'data-sharing', attempt: 1, status: 'completed', counts: { erased: 0, anonymized: 0, kept: 0 }, kept: [], pendingRecipients: [] });
      await request(env, erasureEvent({ requestId, subjectId: subject, attempt: 3 }));
      const again = await replies(env, requestId, (r) => r.some((p) => p.attempt === 3));
      expect(again.at(-1)!.payload).toMatchObject({ attempt: 3, counts: { erased: 0 }, pendingRecipients: [] });
      // Same key (subject): the request for identity only was handled first, and left no trace here.
      expect(await app.models.erasures.exists({ _id: skipped })).toBeNull();
    } finally {
      await app.close();
    }
  });

  it('does not lose a pending notice across a restart: a new instance delivers it', async () => {
    const env = dbs.add(dsEnv(authority, { WEBHOOK_BACKOFF_MS: '60000' }));
    let app = await startDs(authority, env);
    const subject = uniqueId('subj');
    const requestId = uniqueId('er');
    let e: { id: string };
    try {
      e = await register(app, '/e');
      receiver.answer('/e', 500, 200);
      await share(app, subject, e.id, ['profile']);
      await request(env, erasureEvent({ requestId, subjectId: subject }));
      await waitFor(() => receiver.on('/e').length === 1, { what: 'the first delivery' });
      await waitFor(async () => (await app.models.notices.findById(`${requestId}:${e.id}`).lean())?.attempts === 1, { what: 'the failed attempt recorded' });
    } finally {
      await app.close();
    }
    // The next attempt was scheduled a minute away; bring it forward as time passing would, and restart.
    app = await startDs(authority, { ...env, WEBHOOK_BACKOFF_MS: '200' });
    try {
      await app.models.notices.updateOne({ _id: `${requestId}:${e!.id}` }, { $set: { nextAttemptAt: new Date() } });
      await waitFor(async () => (await app.models.notices.findById(`${requestId}:${e!.id}`).lean())?.status === 'acknowledged', { what: 'delivery after restart' });
      expect(receiver.on('/e').map((r) => r.answered)).toEqual([500, 200]);
    } finally {
      await app.close();
    }
  });

  it('records nothing more about a subject once their account erasure began: 410 PIPP_SUBJECT_ERASED on every write, nothing stored (4.2)', async () => {
    const env = dbs.add(dsEnv(authority));
    const app = await startDs(authority, env);
    try {
      const subject = uniqueId('subj');
      const g = await register(app, '/g');
      receiver.answer('/g', 200);
      const requestId = uniqueId('er');
      await request(env, erasureEvent({ requestId, subjectId: subject }));
      await replies(env, requestId, (r) => r.length > 0);

      const me = bearer(authority, subject, 'subject');
      const svc = bearer(authority, 'identity', 'service');
      const base = `/v1/data-sharing/subjects/${subject}`;
      const writes = [
        // A legal basis needs no consent of the subject: refused for the erasure all the same, before consent is asked.
        { method: 'POST' as const, url: `${base}/shares`, headers: op(), payload: { recipientId: g.id, categories: ['profile'], basis: { legalBasis: 'law-enforcement', evidenceRef: 'Court order (2026) 9' } } },
        { method: 'POST' as const, url: `${base}/shares`, headers: svc, payload: { recipientId: g.id, categories: ['profile'], idempotencyKey: 'k-1' } },
        { method: 'POST' as const, url: `${base}/disclosures`, headers: me, payload: { categories: ['profile'], channel: 'Public profile', ground: { ground: '3.3.1', via: 'active-choice' } } },
        { method: 'POST' as const, url: `${base}/other-people-data`, headers: me, payload: { relationship: 'spouse', categories: ['phone-number'], data: { phone: '+8613900002222' }, attestation: { authorized: true, kind: 'consent-of-the-person', statement: 'She agreed' } } },
        { method: 'POST' as const, url: `${base}/independent-authorizations`, headers: op(), payload: { recipientId: g.id, evidenceRef: 'G own contract' } },
        {
          method: 'POST' as const, url: `${base}/indirect-collections`, headers: svc,
          payload: { source: { name: 'Partner' }, purpose: 'sharing', confirmation: { documentRef: 'L-1', subjectConsented: true, lawfulSource: true, liabilityAccepted: true, signedAt: new Date().toISOString() }, items: [{ category: 'profile', data: { nickname: 'x' } }] },
        },
        {
          method: 'POST' as const, url: '/v1/data-sharing/releases', headers: op(),
          payload: {
            recipientId: g.id, purpose: 'sharing', name: 'Case files', attributes: { quasiIdentifiers: ['ageBand'], identifying: ['subject'] },
            rows: [{ subject, ageBand: '30-39' }, { subject: uniqueId('subj'), ageBand: '40-49' }],
            personal: { subjectColumn: 'subject', categories: ['profile'], basis: { legalBasis: 'law-enforcement', evidenceRef: 'Procuratorate request 2026-78' } },
          },
        },
      ];
      for (const w of writes) {
        const res = await app.inject(w);
        expect(res.json(), w.url).toMatchObject({ statusCode: 410, code: 'PIPP_SUBJECT_ERASED', clause: '4.2' });
      }
      for (const model of [app.models.shares, app.models.disclosures, app.models.otherPeople, app.models.independent, app.models.indirect]) {
        expect(await (model as typeof app.models.shares).countDocuments({}), model.modelName).toBe(0);
      }
      expect(await app.models.releases.countDocuments({})).toBe(0);
      // The mark keeps a pseudonym, never the subject id in clear.
      expect(await app.models.erasedSubjects.countDocuments({})).toBe(1);
      expect(JSON.stringify(await app.models.erasedSubjects.find({}).lean())).not.toContain(subject);
    } finally {
      await app.close();
    }
  });
});
