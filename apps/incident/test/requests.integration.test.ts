// Notices other services ask for arrive as events on the real broker and use the same channels and
// tracking: generic requests, policy updates with their specific changes (VI), business shutdowns
// (2.4.2(5)); leak reports from identity open a user report (5.4.1).
import { DLQ_HEADERS } from '@pipp/contracts';
import { TestAuthority, collectMessages, waitFor } from '@pipp/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { produce, startIncident, startSmtp, type SmtpSink } from './helpers.js';

let authority: TestAuthority;
let smtp: SmtpSink;
let svc: Awaited<ReturnType<typeof startIncident>>;
let operator: string;

beforeAll(async () => {
  authority = await TestAuthority.start();
  smtp = await startSmtp();
  svc = await startIncident(authority, { SMTP_URL: smtp.url, CONSUMER_MAX_ATTEMPTS: '2' });
  operator = authority.token({ sub: 'op-1', role: 'operator', sid: 'so1' });
  for (const s of ['ann', 'ben']) {
    await produce(svc.env, 'privacy.subject.contact-changed', 'identity', { subjectId: s, channels: { email: `${s}@example.com` } }, s);
  }
  await waitFor(() => svc.app.models.contacts.countDocuments({}).then((n) => n === 2), { what: 'contacts' });
});
afterAll(async () => {
  await svc?.close();
  await smtp?.close();
  await authority?.close();
});

const api = (method: 'GET' | 'POST', url: string, token = operator, payload?: object) =>
  svc.app.inject({ method, url: `/v1/incident${url}`, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
const mailsTo = (address: string) => smtp.messages.filter((m) => JSON.stringify(m.to).includes(address));
const done = (id: string) => waitFor(async () => {
  const n = await svc.app.models.notifications.findById(id).lean();
  return n?.status === 'completed' ? n : null;
}, { what: `notification ${id}`, timeoutMs: 30_000 });

describe('notification requests from other services', () => {
  it('delivers a new-device sign-in alert requested by identity, with per-subject tracking', async () => {
    await produce(svc.env, 'privacy.notification.requested', 'identity', {
      notificationId: 'ntf-device-1', kind: 'new-device-sign-in', requestedBy: 'identity', audience: { subjectIds: ['ann'] },
      title: 'New sign-in to your account', body: 'Someone signed in from a new device (Firefox on Linux) at 10:02 UTC. If this was not you, report it.',
    }, 'ann');
    const n = await done('ntf-device-1');
    expect(n).toMatchObject({ kind: 'new-device-sign-in', reach: { oneByOne: true, announce: false } });
    expect(mailsTo('ann@example.com').some((m) => m.subject === 'New sign-in to your account' && m.text!.includes('Firefox on Linux') && m.text!.includes('How to contact us'))).toBe(true);
    const mine = await api('GET', '/subjects/ann/notifications', authority.token({ sub: 'ann', role: 'subject', sid: 'sa' }));
    expect(mine.json()).toEqual([expect.objectContaining({ notificationId: 'ntf-device-1', status: 'delivered', deliveredChannel: 'email' })]);
    expect((await api('GET', '/subjects/ann/notifications', authority.token({ sub: 'ben', role: 'subject', sid: 'sb' }))).statusCode).toBe(403);
  });

  it('refuses an incomplete notice: records the refusal, dead-letters the request with the reason, sends nothing', async () => {
    const event = await produce(svc.env, 'privacy.notification.requested', 'consent', {
      notificationId: 'ntf-bad-policy', kind: 'policy-update', requestedBy: 'consent', audience: { allSubjects: true }, title: 'Policy update', body: 'We changed things.',
    });
    const dlq = await collectMessages(`${svc.env.KAFKA_TOPIC_PREFIX}privacy.notification.requested.dlq`, (m) => m.some((x) => x.value?.includes(event.id)));
    expect(dlq.find((x) => x.value?.includes(event.id))!.headers[DLQ_HEADERS.reason]).toMatch(/missing changes/);
    const res = await api('GET', '/admin/notifications/ntf-bad-policy');
    expect(res.json()).toMatchObject({ status: 'refused', refusedReason: 'missing elements: changes' });
    expect(await svc.app.models.deliveries.countDocuments({ notificationId: 'ntf-bad-policy' })).toBe(0);
  });

  it('tells every subject the specific changes of a policy update and announces it; version 1 notifies nobody', async () => {
    const base = { documentId: 'general', appliesTo: 'general', restrictsRights: true, summary: 'Clearer retention periods.', effectiveAt: '2027-01-01T00:00:00.000Z', noticeEndsAt: '2026-12-31T00:00:00.000Z' };
    await produce(svc.env, 'privacy.policy.published', 'consent', { ...base, version: 1, changes: [] });
    await produce(svc.env, 'privacy.policy.published', 'consent', { ...base, version: 2, changes: ['Search logs are kept 90 days instead of 180', 'A new recipient: Example Logistics Ltd.'] });
    const n = await done('ntf_policy_general_v2');
    expect(n).toMatchObject({ kind: 'policy-update', clause: 'VI', audienceSize: 2, reach: { oneByOne: true, announce: true, reason: 'all-subjects' } });
    for (const who of ['ann@example.com', 'ben@example.com']) {
      const mail = mailsTo(who).find((m) => m.subject?.startsWith('Privacy policy update'));
      expect(mail, who).toBeDefined();
      expect(mail!.text).toContain('What changes:\n- Search logs are kept 90 days instead of 180\n- A new recipient: Example Logistics Ltd.');
      expect(mail!.text).toContain('only once you expressly agree');
    }
    expect(await svc.app.models.notifications.exists({ _id: 'ntf_policy_general_v1' })).toBeNull();
    const ann = await svc.app.inject({ url: `/v1/incident/public/announcements/${n.announcementIds[0]}` });
    expect(ann.json()).toMatchObject({ kind: 'policy-update', reason: 'all-subjects' });
    expect(ann.json().text).toContain('Search logs are kept 90 days');
  });

  it('notifies every subject of a business shutdown one by one and by announcement, as retention words it (2.4.2(5))', async () => {
    // Retention's notice, for everyone (no affected subjects known).
    const dataHandling = 'None of the personal information we hold is only for it, except what the law requires us to keep. What other services still use (transaction-record) stays for them.';
    await produce(svc.env, 'privacy.notification.requested', 'retention', {
      notificationId: 'sd-1-notice-1', kind: 'business-shutdown', requestedBy: 'retention', audience: { allSubjects: true }, clause: '2.4.2(5)',
      title: 'Travel booking stops operating', body: 'Travel booking stops operating on 2027-02-01.',
      elements: { functionId: 'travel-booking', effectiveAt: '2027-02-01T00:00:00.000Z', action: 'erase', dataHandling },
    });
    const n = await done('sd-1-notice-1');
    expect(n).toMatchObject({ kind: 'business-shutdown', clause: '2.4.2(5)', reach: { announce: true } });
    const mail = mailsTo('ben@example.com').find((m) => m.subject === 'Travel booking stops operating')!;
    expect(mail.text).toContain('2027-02-01T00:00:00.000Z');
    expect(mail.text).toContain('(transaction-record) stays for them');
  });
});

describe('leak reports from identity (5.4.1)', () => {
  it('opens one user report per leak report, acknowledges it to the subject, and shows it to support', async () => {
    const payload = { subjectId: 'ben', reportId: 'leak-77', reportedBy: 'subject' as const, description: 'I typed my password into a fake login page', reportedAt: new Date().toISOString() };
    await produce(svc.env, 'privacy.account.leak-reported', 'identity', payload, 'ben');
    await produce(svc.env, 'privacy.account.leak-reported', 'identity', payload, 'ben'); // identity retried
    await done('ntf_leak_leak-77');
    const ben = authority.token({ sub: 'ben', role: 'subject', sid: 'sb' });
    const reports = (await api('GET', '/subjects/ben/reports', ben)).json();
    expect(reports).toEqual([expect.objectContaining({ id: 'rep_leak_leak-77', kind: 'account-leak', clause: '5.4.1', status: 'open', openedBy: 'identity', text: payload.description })]);
    expect(mailsTo('ben@example.com').some((m) => m.subject === 'We received your account leak report' && m.text!.includes('rep_leak_leak-77') && m.text!.includes('set a new, complex password'))).toBe(true);
    const queue = (await api('GET', '/admin/reports?kind=account-leak')).json();
    expect(queue.items.map((r: { id: string }) => r.id)).toEqual(['rep_leak_leak-77']);
    // An account without a password has none to reset: the acknowledgment says to sign in with a code.
    await produce(svc.env, 'privacy.account.leak-reported', 'identity', { ...payload, reportId: 'leak-78', passwordResetRequired: false }, 'ben');
    await done('ntf_leak_leak-78');
    await waitFor(() => mailsTo('ben@example.com').find((m) => m.text!.includes('rep_leak_leak-78')) ?? null, { what: 'the second acknowledgment' });
    const second = mailsTo('ben@example.com').find((m) => m.text!.includes('rep_leak_leak-78'))!;
    expect(second.text).toContain('sign in again with a one-time code');
    expect(second.text).not.toContain('new, complex password');
  });
});
