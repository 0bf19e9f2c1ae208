// The incident service as an erasure participant (policy 4.1, 4.2; DESIGN.md saga), on the real
// broker and database: after the request, no document holds the subject's contact details or texts;
// incident records keep only a pseudonymous reference (PIPL art. 57); the reply is repeated
// identically on redelivery; late contact events do not bring the data back. Plus retention sweeps.
import { TestAuthority, collectMessages, waitFor, withMongo } from '@pipp/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { pseudonymOf } from '../src/domain/erasure.js';
import { PSEUDONYM_KEY, incidentBody, produce, startHttpSink, startIncident, startSmtp, type SmtpSink } from './helpers.js';

let authority: TestAuthority;
let smtp: SmtpSink;
let svc: Awaited<ReturnType<typeof startIncident>>;
let operator: string;

const ZOE = { email: 'zoe.w@example.com', sms: '+8613912345678', letter: '88 Nanjing Road, Shanghai' };
const REPORT_TEXT = 'My order history shows purchases I never made';

beforeAll(async () => {
  authority = await TestAuthority.start();
  smtp = await startSmtp();
  svc = await startIncident(authority, { SMTP_URL: smtp.url });
  operator = authority.token({ sub: 'op-1', role: 'operator', sid: 'so1' });
});
afterAll(async () => {
  await svc?.close();
  await smtp?.close();
  await authority?.close();
});

const api = (method: 'GET' | 'POST', url: string, token = operator, payload?: object) =>
  svc.app.inject({ method, url: `/v1/incident${url}`, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
const settled = (id: string) => waitFor(async () => (await svc.app.models.notifications.findById(id).lean())?.status === 'completed', { what: id, timeoutMs: 30_000 }).catch(async (err) => {
  console.log(JSON.stringify(await svc.app.models.notifications.findById(id).lean()), JSON.stringify(await svc.app.models.deliveries.find({ notificationId: id }).lean()));
  throw err;
});

/** Every document of the service's database, as JSON text, that mentions one of `needles`. */
async function documentsMentioning(needles: string[]) {
  return withMongo(async (client) => {
    const db = client.db(svc.env.MONGO_DB);
    const hits: string[] = [];
    for (const { name } of await db.listCollections().toArray()) {
      for (const doc of await db.collection(name).find({}).toArray()) {
        const text = JSON.stringify(doc);
        for (const n of needles) if (text.includes(n)) hits.push(`${name}: ${n}`);
      }
    }
    return hits;
  });
}

const erasure = (attempt: number, extra: Record<string, unknown> = {}) => ({
  requestId: 'er-zoe-1', subjectId: 'zoe', scope: { kind: 'account' as const }, ground: '4.1' as const, origin: 'subject' as const,
  requestedBy: { role: 'subject' as const, actorId: 'zoe' }, legalHolds: [], deadline: new Date(Date.now() + 86_400_000).toISOString(), attempt, ...extra,
});

describe('erasure participant', () => {
  it('erases contacts and texts, keeps only pseudonymous incident records, and answers the same on redelivery', async () => {
    const env = svc.env;
    await produce(env, 'privacy.subject.contact-changed', 'identity', { subjectId: 'zoe', channels: ZOE }, 'zoe');
    await produce(env, 'privacy.subject.contact-changed', 'identity', { subjectId: 'yan', channels: { email: 'yan@example.com' } }, 'yan');
    await waitFor(() => svc.app.models.contacts.countDocuments({}).then((n) => n === 2), { what: 'contacts' });

    // What the service comes to hold about zoe: an incident notice, a letter, a report with a reply.
    const incident = (await api('POST', '/admin/incidents', operator, incidentBody(['zoe', 'yan']))).json();
    const noticeRes = await api('POST', `/admin/incidents/${incident.id}/notifications`, operator, {});
    expect(noticeRes.statusCode, noticeRes.body).toBe(202);
    const notice = noticeRes.json();
    const letterRes = await api('POST', '/admin/notifications', operator, { kind: 'general', title: 'Your card expires', body: 'Please renew.', channels: ['letter'], audience: { subjectIds: ['zoe'] } });
    expect(letterRes.statusCode, letterRes.body).toBe(202);
    const letter = letterRes.json();
    await settled(notice.id);
    await settled(letter.id);
    await produce(env, 'privacy.notification.requested', 'identity', {
      notificationId: 'ntf-zoe-device', kind: 'new-device-sign-in', requestedBy: 'identity', audience: { subjectIds: ['zoe'] },
      title: 'New sign-in', body: 'Zoe, someone signed in from a Huawei P60 near Pudong at 03:12.',
    }, 'zoe');
    await settled('ntf-zoe-device');
    const zoe = authority.token({ sub: 'zoe', role: 'subject', sid: 'sz' });
    const report = (await api('POST', '/subjects/zoe/reports', zoe, { kind: 'wrong-information', title: 'Wrong orders', text: REPORT_TEXT })).json();
    await api('POST', `/admin/reports/${report.id}/replies`, operator, { text: 'We are checking the orders on 88 Nanjing Road' });
    const before = await documentsMentioning([ZOE.email, ZOE.letter, REPORT_TEXT, 'Huawei P60']);
    for (const needle of [ZOE.email, ZOE.letter, REPORT_TEXT, 'Huawei P60']) expect(before.some((h) => h.endsWith(needle)), needle).toBe(true);

    await produce(env, 'privacy.erasure.requested', 'retention', erasure(1), 'zoe');
    const replies = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.erasure.participant-replied`, (m) => m.length >= 1);
    const first = JSON.parse(replies[0]!.value!).payload;
    expect(first).toMatchObject({ requestId: 'er-zoe-1', participant: 'incident', attempt: 1, status: 'completed' });
    // Erased: the contact, the queued letter, the deliveries of the letter notice and of the sign-in
    // alert, and the texts of those two notices (addressed to zoe alone). Anonymized: the report.
    // Kept with a pseudonym: the incident notice's delivery and the incident's affected-subject entry.
    expect(first.counts).toEqual({ erased: 6, anonymized: 1, kept: 2 });
    expect(first.kept).toEqual([expect.objectContaining({ category: 'notification-record', legalBasis: 'legal-obligation', reason: expect.stringMatching(/PIPL art\. 57/) })]);

    // Nothing in any collection names zoe's contact details or her texts any more, nor her id.
    expect(await documentsMentioning([ZOE.email, ZOE.sms, ZOE.letter, REPORT_TEXT, '88 Nanjing Road', 'Huawei P60', '"zoe"', ':zoe'])).toEqual([]);
    const ps = pseudonymOf('zoe', PSEUDONYM_KEY);
    expect(await svc.app.models.deliveries.findOne({ notificationId: notice.id, subjectId: ps }).lean()).toMatchObject({ pseudonymous: true, status: 'delivered' });
    expect(await svc.app.models.affected.findOne({ incidentId: incident.id }).lean()).toMatchObject({ subjectIds: ['yan'], pseudonyms: [ps] });
    expect(await svc.app.models.reports.findById(report.id).lean()).toMatchObject({ subjectId: null, text: '', replies: [], anonymized: true, kind: 'wrong-information' });
    // yan is untouched.
    expect(await svc.app.models.contacts.exists({ _id: 'yan' })).not.toBeNull();

    // A late contact event from identity cannot bring zoe's details back.
    await produce(env, 'privacy.subject.contact-changed', 'identity', { subjectId: 'zoe', channels: ZOE }, 'zoe');
    await produce(env, 'privacy.subject.contact-changed', 'identity', { subjectId: 'yan', channels: { email: 'yan2@example.com' } }, 'yan');
    await waitFor(async () => (await svc.app.models.contacts.findById('yan').lean())?.channels.email === 'yan2@example.com', { what: 'the later event' });
    expect(await svc.app.models.contacts.exists({ _id: 'zoe' })).toBeNull();

    // Redelivered (retention retries until answered): the same answer for attempt 2, nothing else changes.
    await produce(env, 'privacy.erasure.requested', 'retention', erasure(2), 'zoe');
    const again = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.erasure.participant-replied`, (m) => m.length >= 2);
    expect(JSON.parse(again[1]!.value!).payload).toEqual({ ...first, attempt: 2 });

    // A retry addressed to other participants only is not ours to answer.
    await produce(env, 'privacy.erasure.requested', 'retention', erasure(3, { participants: ['identity'] }), 'zoe');
    await produce(env, 'privacy.erasure.requested', 'retention', erasure(4), 'zoe');
    const later = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.erasure.participant-replied`, (m) => m.length >= 3);
    expect(later.map((m) => JSON.parse(m.value!).payload.attempt)).toEqual([1, 2, 4]);
  });

  it('completes a notification whose last pending delivery went with the subject\'s erasure', async () => {
    const push = await startHttpSink();
    try {
      push.failures.set('/devices/pia', 503); // pia's device is away: the delivery waits for a retry
      await produce(svc.env, 'privacy.subject.contact-changed', 'identity', { subjectId: 'pia', channels: { push: `${push.url}/devices/pia` } }, 'pia');
      await waitFor(() => svc.app.models.contacts.exists({ _id: 'pia' }), { what: 'pia\'s contact' });
      const res = await api('POST', '/admin/notifications', operator, { kind: 'general', title: 'Maintenance tonight', body: 'The app pauses at 02:00.', channels: ['push'], audience: { subjectIds: ['pia'] } });
      expect(res.statusCode, res.body).toBe(202);
      const id = res.json().id as string;
      await waitFor(async () => (await svc.app.models.deliveries.findOne({ notificationId: id }).lean())?.status === 'retrying', { what: 'the delivery to wait for a retry' });
      await produce(svc.env, 'privacy.erasure.requested', 'retention', { ...erasure(1), requestId: 'er-pia-1', subjectId: 'pia', requestedBy: { role: 'subject', actorId: 'pia' } }, 'pia');
      // Without the erased subject's delivery nothing is pending: the notification completes (it stayed
      // "delivering" for good, and blocked notifying its incident again).
      await settled(id);
    } finally {
      await push.close();
    }
  });

  it('completes a notification that an erasure left delivering before erasures settled what they dropped', async () => {
    // As such a notification was stored: planned, every batch done, nothing pending, still delivering.
    const id = 'ntf-stuck-1';
    await svc.app.models.notifications.collection.insertOne({
      _id: id, kind: 'general', title: 'Stuck', body: 'x', elements: {}, contact: 'c', clause: 'preamble', mode: 'first-channel', requestedBy: { role: 'operator', actorId: 'op-1' },
      audience: { kind: 'subjects', subjectIds: [] }, audienceSize: 1, reach: { oneByOne: true, announce: false }, status: 'delivering', plan: { cursor: '', batches: 0, subjects: 1, done: true }, createdAt: new Date(),
    } as never);
    await svc.app.notifier.settleStuck();
    expect((await svc.app.models.notifications.findById(id).lean())?.status).toBe('completed');
  });

  it('still reports the pseudonymous incident records when a run that failed half-way is run again', async () => {
    const env = svc.env;
    await produce(env, 'privacy.subject.contact-changed', 'identity', { subjectId: 'lee', channels: { email: 'lee@example.com' } }, 'lee');
    await waitFor(async () => (await svc.app.models.contacts.exists({ _id: 'lee' })) !== null, { what: 'lee\'s contact' });
    const incident = (await api('POST', '/admin/incidents', operator, incidentBody(['lee']))).json();
    const notice = (await api('POST', `/admin/incidents/${incident.id}/notifications`, operator, {})).json();
    await settled(notice.id);
    // The first run pseudonymizes lee's incident records, then fails to store its receipt; the consumer runs it again.
    const insert = svc.app.outbox.insert.bind(svc.app.outbox);
    let failures = 0;
    const spy = vi.spyOn(svc.app.outbox, 'insert').mockImplementation(async (model, doc, entries) => {
      if ((model as unknown) === svc.app.models.erasures && failures === 0) { failures += 1; throw new Error('the receipt could not be stored (injected)'); }
      return insert(model, doc, entries);
    });
    try {
      await produce(env, 'privacy.erasure.requested', 'retention', erasure(1, { requestId: 'er-lee-1', subjectId: 'lee', requestedBy: { role: 'subject', actorId: 'lee' } }), 'lee');
      const replies = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.erasure.participant-replied`, (m) => m.some((x) => x.key === 'lee'));
      const reply = JSON.parse(replies.find((x) => x.key === 'lee')!.value!).payload;
      expect(failures).toBe(1);
      // The incident notice's delivery and the affected-subject entry, kept with a pseudonym.
      expect(reply).toMatchObject({ requestId: 'er-lee-1', status: 'completed', counts: { kept: 2 }, kept: [{ category: 'notification-record', legalBasis: 'legal-obligation' }] });
    } finally {
      spy.mockRestore();
    }
  });

  it('keeps no report or leak report of a subject whose account erasure has begun (a request racing the erasure)', async () => {
    // Found by fuzzing: reports posted while the saga ran survived a completed erasure.
    const xia = authority.token({ sub: 'xia', role: 'subject', sid: 'sx1' });
    await produce(svc.env, 'privacy.erasure.requested', 'retention', { ...erasure(1), requestId: 'er-xia', subjectId: 'xia', requestedBy: { role: 'subject', actorId: 'xia' } }, 'xia');
    await collectMessages(`${svc.env.KAFKA_TOPIC_PREFIX}privacy.erasure.participant-replied`, (m) => m.some((x) => x.value!.includes('er-xia')));
    // The token is still valid here (identity's revocation travels separately): the report is refused.
    const late = await api('POST', '/subjects/xia/reports', xia, { kind: 'question', title: 'Still there?', text: 'Reach me at xia@example.com' });
    expect(late.statusCode).toBe(409);
    expect(late.json()).toMatchObject({ code: 'PIPP_SUBJECT_ERASED' });
    await produce(svc.env, 'privacy.account.leak-reported', 'identity', { reportId: 'lr-xia', subjectId: 'xia', reportedBy: 'subject', reportedAt: new Date().toISOString(), description: 'xia@example.com leaked' }, 'xia');
    await new Promise((r) => setTimeout(r, 1500));
    expect(await svc.app.models.reports.countDocuments({ subjectId: 'xia' })).toBe(0);
    expect(await svc.app.models.reports.exists({ _id: 'rep_leak_lr-xia' })).toBeNull();
  });

  it('isolates reports under a legal hold instead of anonymizing them, for a category-scoped erasure', async () => {
    const zed = authority.token({ sub: 'zed', role: 'subject', sid: 'sz2' });
    const report = (await api('POST', '/subjects/zed/reports', zed, { kind: 'complaint', title: 'Fraud', text: 'Evidence for the police case' })).json();
    await produce(svc.env, 'privacy.erasure.requested', 'retention', {
      ...erasure(1), requestId: 'er-zed', subjectId: 'zed', requestedBy: { role: 'operator', actorId: 'op-1' }, origin: 'operator',
      scope: { kind: 'categories', categories: ['support-report'] },
      legalHolds: [{ category: 'support-report', legalBasis: 'law-enforcement', evidenceRef: 'case 2026-77', purgeAt: '2027-06-01T00:00:00.000Z' }],
    }, 'zed');
    const replies = await collectMessages(`${svc.env.KAFKA_TOPIC_PREFIX}privacy.erasure.participant-replied`, (m) => m.some((x) => x.value!.includes('er-zed')));
    const reply = JSON.parse(replies.find((x) => x.value!.includes('er-zed'))!.value!).payload;
    expect(reply.counts).toEqual({ erased: 0, anonymized: 0, kept: 1 });
    expect(reply.kept).toEqual([{ category: 'support-report', legalBasis: 'law-enforcement', purgeAt: '2027-06-01T00:00:00.000Z', reason: 'legal hold of the erasure request' }]);
    expect(await svc.app.models.reports.findById(report.id).lean()).toMatchObject({ text: 'Evidence for the police case', isolated: { legalBasis: 'law-enforcement' } });
  });

  it('isolates contact channels under a legal hold out of the directory: reported kept, reached by no notice, purged at their date', async () => {
    await produce(svc.env, 'privacy.subject.contact-changed', 'identity', { subjectId: 'quinn', channels: { email: 'quinn@example.com', sms: '+8613700000021' } }, 'quinn');
    await waitFor(() => svc.app.models.contacts.exists({ _id: 'quinn' }), { what: 'quinn' });
    const purgeAt = '2027-02-01T00:00:00.000Z';
    await produce(svc.env, 'privacy.erasure.requested', 'retention', {
      ...erasure(1), requestId: 'er-quinn', subjectId: 'quinn', requestedBy: { role: 'subject', actorId: 'quinn' },
      legalHolds: [{ category: 'contact-channel', legalBasis: 'law-enforcement', evidenceRef: 'PSB request 2026-118', purgeAt }],
    }, 'quinn');
    const replies = await collectMessages(`${svc.env.KAFKA_TOPIC_PREFIX}privacy.erasure.participant-replied`, (m) => m.some((x) => x.value!.includes('er-quinn')));
    const reply = JSON.parse(replies.find((x) => x.value!.includes('er-quinn'))!.value!).payload;
    expect(reply.kept).toContainEqual({ category: 'contact-channel', legalBasis: 'law-enforcement', purgeAt, reason: 'legal hold of the erasure request' });
    // Out of the directory; the e-mail address (held) isolated, the phone number (not held) erased.
    expect(await svc.app.models.contacts.exists({ _id: 'quinn' })).toBeNull();
    const isolated = await svc.app.models.isolatedContacts.find({ subjectId: 'quinn' }).lean();
    expect(isolated).toEqual([expect.objectContaining({ category: 'contact-channel', channels: { email: 'quinn@example.com' }, legalBasis: 'law-enforcement', purgeAt: new Date(purgeAt) })]);
    // No notice reaches an isolated address.
    const res = await api('POST', '/admin/notifications', operator, { kind: 'general', title: 'Maintenance', body: 'Tonight.', channels: ['email'], audience: { subjectIds: ['quinn'] } });
    await settled(res.json().id);
    expect(smtp.messages.some((mail) => JSON.stringify(mail.to).includes('quinn@example.com'))).toBe(false);
    // Redelivered: the same answer.
    await produce(svc.env, 'privacy.erasure.requested', 'retention', { ...erasure(2), requestId: 'er-quinn', subjectId: 'quinn', requestedBy: { role: 'subject', actorId: 'quinn' }, legalHolds: [{ category: 'contact-channel', legalBasis: 'law-enforcement', evidenceRef: 'PSB request 2026-118', purgeAt }] }, 'quinn');
    const again = await collectMessages(`${svc.env.KAFKA_TOPIC_PREFIX}privacy.erasure.participant-replied`, (m) => m.filter((x) => x.value!.includes('er-quinn')).length >= 2);
    expect(JSON.parse(again.filter((x) => x.value!.includes('er-quinn'))[1]!.value!).payload.kept).toEqual(reply.kept);
    // Purged once its date has come (a sweep as of after that date).
    await produce(svc.env, 'privacy.retention.sweep-requested', 'retention', { sweepId: 'sw-quinn', asOf: '2027-02-02T00:00:00.000Z', batchSize: 100, rules: [] });
    await waitFor(async () => !(await svc.app.models.isolatedContacts.exists({ subjectId: 'quinn' })), { what: 'the isolated contact to be purged' });
  });

  it('erases only the channels in scope for a category erasure, and takes identity\'s next contact event', async () => {
    await produce(svc.env, 'privacy.subject.contact-changed', 'identity', { subjectId: 'kim', channels: { email: 'kim@example.com', sms: '+8613700000009', push: 'https://push.example.com/kim' }, preferred: ['push'] }, 'kim');
    await waitFor(() => svc.app.models.contacts.exists({ _id: 'kim' }), { what: 'kim' });
    await produce(svc.env, 'privacy.erasure.requested', 'retention', {
      ...erasure(1), requestId: 'er-kim', subjectId: 'kim', scope: { kind: 'categories', categories: ['contact-channel'] },
    }, 'kim');
    await waitFor(async () => (await svc.app.models.erasures.exists({ _id: 'er-kim' })) !== null, { what: 'the erasure' });
    expect(await svc.app.models.contacts.findById('kim').lean()).toMatchObject({ channels: { sms: '+8613700000009' }, preferred: [] });
    expect(JSON.stringify(await svc.app.models.contacts.findById('kim').lean())).not.toMatch(/kim@example\.com|push\.example/);
    // identity then republishes what is left (as it does after a contact-channel erasure): accepted.
    await produce(svc.env, 'privacy.subject.contact-changed', 'identity', { subjectId: 'kim', channels: { sms: '+8613700000009', telephone: '+8613700000009' } }, 'kim');
    await waitFor(async () => (await svc.app.models.contacts.findById('kim').lean())?.channels.telephone === '+8613700000009', { what: 'the follow-up event' });
  });

  it('applies retention sweeps in batches and purges kept records whose date has come', async () => {
    const now = new Date();
    await svc.app.models.reports.insertMany([1, 2, 3].map((i) => ({
      _id: `rep_old_${i}`, subjectId: `old${i}`, kind: 'question', status: 'closed', title: 't', text: `old question ${i}`, replies: [], openedBy: 'subject',
      createdAt: new Date(now.getTime() - 400 * 86_400_000), updatedAt: new Date(now.getTime() - 400 * 86_400_000),
    })));
    await produce(svc.env, 'privacy.retention.sweep-requested', 'retention', {
      sweepId: 'sw-1', asOf: now.toISOString(), batchSize: 2,
      rules: [{ category: 'support-report', periodDays: 365, action: 'anonymize', criterion: '5.2.1' }],
    });
    const replies = await collectMessages(`${svc.env.KAFKA_TOPIC_PREFIX}privacy.retention.sweep-replied`, (m) => m.some((x) => x.value!.includes('"sw-1"')));
    expect(JSON.parse(replies.find((x) => x.value!.includes('"sw-1"'))!.value!).payload).toMatchObject({ sweepId: 'sw-1', participant: 'incident', status: 'completed', counts: { anonymized: 3 }, batches: 2 });
    expect(await svc.app.models.reports.countDocuments({ text: /old question/ })).toBe(0);
  });
});
