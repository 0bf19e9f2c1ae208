// The "done when", on the real broker and database: a security incident reaches a real SMTP
// server and real webhook receivers with every element 5.4.2 requires; a failed delivery is retried
// and then falls back to another channel; subjects who cannot be reached, and audiences above the
// threshold, get a public announcement served without authentication.
import { createHmac } from 'node:crypto';
import { TestAuthority, collectMessages, waitFor } from '@pipp/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { incidentBody, produce, startHttpSink, startIncident, startSmtp, type HttpSink, type SmtpSink } from './helpers.js';

let authority: TestAuthority;
let smtp: SmtpSink;
let push: HttpSink;
let sms: HttpSink;
let svc: Awaited<ReturnType<typeof startIncident>>;
let operator: string;

const ELEMENTS = ['What happened', 'Personal information involved', 'Possible impact on you', 'What we have done and will do', 'What you can do to prevent or reduce the risk', 'Remedies available to you', 'How to contact us'];

beforeAll(async () => {
  authority = await TestAuthority.start();
  [smtp, push, sms] = await Promise.all([startSmtp(), startHttpSink(), startHttpSink()]);
  svc = await startIncident(authority, {
    SMTP_URL: smtp.url, SMS_PROVIDER_URL: `${sms.url}/sms`, PUSH_SIGNING_SECRET: 'push-secret', DELIVERY_MAX_ATTEMPTS: '2',
    ANNOUNCEMENT_THRESHOLD: '5', FANOUT_BATCH_SIZE: '2', CONTACT_INFO: 'Write to security@pipp.example or call 400-000-0000',
  });
  operator = authority.token({ sub: 'op-1', role: 'operator', sid: 'so1' });
});
afterAll(async () => {
  await svc?.close();
  await Promise.all([smtp?.close(), push?.close(), sms?.close()]);
  await authority?.close();
});

const api = (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown, token: string | null = operator) =>
  svc.app.inject({ method, url: `/v1/incident${url}`, ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}), ...(payload ? { payload: payload as object } : {}) });

async function completed(id: string) {
  return waitFor(async () => {
    const res = await api('GET', `/admin/notifications/${id}`);
    return res.json().status === 'completed' ? res.json() : null;
  }, { what: `notification ${id} to complete`, timeoutMs: 30_000 });
}

describe('a security incident reaches every channel', () => {
  it('mails, pushes, retries, falls back, and announces for the unreachable', async () => {
    const env = svc.env;
    // The contact directory, as identity publishes it.
    await produce(env, 'privacy.subject.contact-changed', 'identity', { subjectId: 'alice', channels: { email: 'alice@example.com', sms: '+8613800000001' } }, 'alice');
    await produce(env, 'privacy.subject.contact-changed', 'identity', { subjectId: 'bob', channels: { push: `${push.url}/devices/bob`, email: 'bob@example.com' }, preferred: ['push'] }, 'bob');
    await produce(env, 'privacy.subject.contact-changed', 'identity', { subjectId: 'carol', channels: { push: `${push.url}/devices/carol`, sms: '+8613800000003' }, preferred: ['push'] }, 'carol');
    push.failures.set('/devices/carol', 503); // carol's push endpoint is down
    await waitFor(() => svc.app.models.contacts.countDocuments({}).then((n) => n === 3), { what: 'the contact directory' });

    const created = await api('POST', '/admin/incidents', incidentBody(['alice', 'bob', 'carol', 'dave']));
    expect(created.statusCode).toBe(201);
    const incident = created.json();
    expect(incident).toMatchObject({ status: 'open', affectedCount: 4, timeline: [{ kind: 'created', by: 'op-1' }] });

    const started = await api('POST', `/admin/incidents/${incident.id}/notifications`, {});
    expect(started.statusCode).toBe(202);
    expect(started.json()).toMatchObject({ kind: 'security-incident', clause: '5.4.2', reach: { oneByOne: true, announce: false }, audience: { size: 4 } });
    const done = await completed(started.json().id);

    // alice: e-mail on a real SMTP server, with every element 5.4.2 requires.
    const mail = smtp.messages.find((m) => m.to && JSON.stringify(m.to).includes('alice@example.com'));
    expect(mail, 'alice\'s e-mail').toBeDefined();
    expect(mail!.subject).toBe('Security notice: Order database read by an unauthorized party');
    for (const heading of ELEMENTS) expect(mail!.text).toContain(`${heading}:`);
    for (const value of ['a leaked staff credential', 'Mobile phone number', 'Phishing messages', 'Revoked the leaked credential', 'Hardware security keys', 'Never share one-time codes', 'identity monitoring', 'security@pipp.example']) {
      expect(mail!.text).toContain(value);
    }
    expect(mail!.headers.get('x-pipp-notification')).toBe(started.json().id);

    // bob: push webhook, signed, structured sections.
    const bobPush = push.hits.find((h) => h.path === '/devices/bob')!;
    expect(bobPush.body).toMatchObject({ kind: 'security-incident', notificationId: started.json().id });
    expect((bobPush.body.sections as { name: string }[]).map((s) => s.name)).toEqual(['basicSituation', 'categories', 'possibleImpact', 'measures', 'advice', 'remedies', 'contact']);
    expect(bobPush.headers['x-pipp-signature']).toBe(`sha256=${createHmac('sha256', 'push-secret').update(bobPush.raw).digest('hex')}`);
    expect(smtp.messages.some((m) => JSON.stringify(m.to).includes('bob@example.com'))).toBe(false); // one channel is enough

    // carol: push failed twice (503), then fell back to SMS through the provider.
    expect(push.hits.filter((h) => h.path === '/devices/carol')).toHaveLength(2);
    const carolSms = sms.hits.find((h) => h.body.to === '+8613800000003')!;
    expect(carolSms.path).toBe('/sms');
    for (const heading of ELEMENTS) expect(carolSms.body.text).toContain(heading);

    const deliveries = (await api('GET', `/admin/notifications/${started.json().id}/deliveries`)).json().items as { subjectId: string; status: string; attempts: { channel: string; ok: boolean; error?: string }[]; deliveredChannel?: string }[];
    const bySubject = Object.fromEntries(deliveries.map((d) => [d.subjectId, d]));
    expect(bySubject.alice).toMatchObject({ status: 'delivered', deliveredChannel: 'email' });
    expect(bySubject.bob).toMatchObject({ status: 'delivered', deliveredChannel: 'push' });
    expect(bySubject.carol).toMatchObject({ status: 'delivered', deliveredChannel: 'sms' });
    expect(bySubject.carol!.attempts.map((a) => `${a.channel}:${a.ok}`)).toEqual(['push:false', 'push:false', 'sms:true']);
    expect(bySubject.carol!.attempts[0]!.error).toBe('push: HTTP 503');
    // dave has no channel on file: unreachable one by one …
    expect(bySubject.dave).toMatchObject({ status: 'unreachable', attempts: [] });

    expect(done.progress).toMatchObject({
      audienceSize: 4, planned: 4, batches: 2, batchesProcessed: 2, retries: 1, fallbacks: 1, percentDone: 100,
      byStatus: { delivered: 3, unreachable: 1, failed: 0, queued: 0, retrying: 0 }, byChannel: { email: 1, push: 1, sms: 1 },
    });

    // … so an announcement is published, and served without authentication.
    expect(done.announcementIds).toHaveLength(1);
    const ann = await api('GET', `/public/announcements/${done.announcementIds[0]}`, undefined, null);
    expect(ann.statusCode).toBe(200);
    expect(ann.json()).toMatchObject({ reason: 'unreachable-subjects', kind: 'security-incident', incidentId: incident.id });
    for (const heading of ELEMENTS) expect(ann.json().text).toContain(heading);
    expect(ann.json().text).not.toMatch(/alice|bob|carol|dave|@example\.com|\+86/);
    const list = await api('GET', '/public/announcements', undefined, null);
    expect(list.json().items.map((a: { id: string }) => a.id)).toContain(done.announcementIds[0]);

    const published = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.announcement.published`, (m) => m.length >= 1);
    expect(JSON.parse(published[0]!.value!).payload).toMatchObject({ announcementId: done.announcementIds[0], reason: 'unreachable-subjects' });

    const after = (await api('GET', `/admin/incidents/${incident.id}`)).json();
    expect(after.notificationIds).toEqual([started.json().id]);
    expect(after.timeline.map((t: { kind: string }) => t.kind)).toEqual(['created', 'notified', 'announced']);
  });

  it('falls back from a permanently rejected e-mail to the next channel without retrying it', async () => {
    await produce(svc.env, 'privacy.subject.contact-changed', 'identity', { subjectId: 'erin', channels: { email: 'reject-erin@example.com', letter: '1 Example Road, Shanghai' } }, 'erin');
    await waitFor(() => svc.app.models.contacts.exists({ _id: 'erin' }), { what: 'erin\'s contact' });
    const incident = (await api('POST', '/admin/incidents', incidentBody(['erin']))).json();
    const started = (await api('POST', `/admin/incidents/${incident.id}/notifications`, {})).json();
    await completed(started.id);
    const [d] = (await api('GET', `/admin/notifications/${started.id}/deliveries`)).json().items;
    expect(d.attempts.map((a: { channel: string; ok: boolean; permanent?: boolean }) => `${a.channel}:${a.ok}:${a.permanent ?? ''}`)).toEqual(['email:false:true', 'letter:true:']);
    const letter = await svc.app.models.letters.findOne({ subjectId: 'erin' }).lean();
    expect(letter).toMatchObject({ status: 'queued', address: '1 Example Road, Shanghai' });
    for (const heading of ELEMENTS) expect(letter!.content).toContain(heading);
  });

  it('sends a critical incident on every channel the subject has, skipping one that fails', async () => {
    await produce(svc.env, 'privacy.subject.contact-changed', 'identity', { subjectId: 'fay', channels: { email: 'fay@example.com', push: `${push.url}/devices/fay`, sms: '+8613800000006' } }, 'fay');
    push.failures.set('/devices/fay', 410); // the device was unregistered: permanent
    await waitFor(() => svc.app.models.contacts.exists({ _id: 'fay' }), { what: 'fay' });
    const incident = (await api('POST', '/admin/incidents', incidentBody(['fay'], { severity: 'critical' }))).json();
    const started = (await api('POST', `/admin/incidents/${incident.id}/notifications`, {})).json();
    expect(started.mode).toBe('every-channel');
    const done = await completed(started.id);
    const [d] = (await api('GET', `/admin/notifications/${started.id}/deliveries`)).json().items;
    expect(d).toMatchObject({ status: 'delivered', deliveredChannel: 'email', deliveredChannels: ['email', 'sms'] });
    expect(d.attempts.map((a: { channel: string; ok: boolean }) => `${a.channel}:${a.ok}`)).toEqual(['email:true', 'push:false', 'sms:true']);
    expect(smtp.messages.some((m) => JSON.stringify(m.to).includes('fay@example.com'))).toBe(true);
    expect(sms.hits.some((h) => h.body.to === '+8613800000006')).toBe(true);
    expect(done.progress.byChannel).toMatchObject({ email: 1, sms: 1, push: 0 });
  });

  it('publishes an announcement instead of one-by-one notices above the threshold', async () => {
    const ids = ['s1', 's2', 's3', 's4', 's5', 's6'];
    const incident = (await api('POST', '/admin/incidents', incidentBody(ids))).json();
    const before = smtp.messages.length + push.hits.length + sms.hits.length;
    const started = await api('POST', `/admin/incidents/${incident.id}/notifications`, {});
    expect(started.statusCode).toBe(202);
    expect(started.json()).toMatchObject({ status: 'completed', reach: { oneByOne: false, announce: true, reason: 'above-threshold' }, audience: { size: 6 } });
    const [annId] = started.json().announcementIds;
    const ann = await api('GET', `/public/announcements/${annId}`, undefined, null);
    expect(ann.statusCode).toBe(200);
    expect(ann.json()).toMatchObject({ reason: 'above-threshold', incidentId: incident.id });
    for (const heading of ELEMENTS) expect(ann.json().text).toContain(heading);
    expect(await svc.app.models.deliveries.countDocuments({ notificationId: started.json().id })).toBe(0);
    expect(smtp.messages.length + push.hits.length + sms.hits.length).toBe(before);
  });

  it('refuses to notify about an incident whose notice would lack an element, and sends nothing', async () => {
    const incident = (await api('POST', '/admin/incidents', incidentBody(['alice'], { measuresTaken: [], measuresPlanned: [] }))).json();
    const res = await api('POST', `/admin/incidents/${incident.id}/notifications`, {});
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'PIPP_INCOMPLETE_NOTICE', clause: '5.4.2', details: [{ path: '/incident/measures' }] });
    expect(await svc.app.models.notifications.countDocuments({ incidentId: incident.id })).toBe(0);
  });
});

describe('consent to notifications (2.1.1)', () => {
  it('sends no general notice to a subject who withdrew consent to notifications, until they grant it again; notices the law requires still go', async () => {
    await produce(svc.env, 'privacy.subject.contact-changed', 'identity', { subjectId: 'olga', channels: { email: 'olga@example.com' } }, 'olga');
    await waitFor(() => svc.app.models.contacts.exists({ _id: 'olga' }), { what: 'olga' });
    const consent = (state: 'granted' | 'withdrawn', at: Date) => produce(svc.env, 'privacy.consent.changed', 'consent', { subjectId: 'olga', recordId: `rec-olga-${state}-${at.getTime()}`, purpose: 'notifications', state, at: at.toISOString() }, 'olga');
    await consent('withdrawn', new Date());
    await waitFor(() => svc.app.models.optOuts.exists({ _id: 'olga', withdrawn: true }), { what: 'the withdrawal' });
    const mailsTo = () => smtp.messages.filter((m) => JSON.stringify(m.to).includes('olga@example.com')).length;
    const general = (await api('POST', '/admin/notifications', { kind: 'general', title: 'New features', body: 'We added dark mode.', audience: { subjectIds: ['olga'] } })).json();
    const done = await completed(general.id);
    expect(done.progress.byStatus).toMatchObject({ declined: 1, delivered: 0 });
    expect(mailsTo()).toBe(0);
    // A security incident notice is the law's (5.4.2), not the subject's choice: it goes.
    const incident = (await api('POST', '/admin/incidents', incidentBody(['olga']))).json();
    await completed((await api('POST', `/admin/incidents/${incident.id}/notifications`, {})).json().id);
    await waitFor(() => mailsTo() === 1, { what: 'the incident notice' });
    // Granted again: general notices reach her again. A replayed older withdrawal changes nothing.
    await consent('granted', new Date());
    await waitFor(() => svc.app.models.optOuts.exists({ _id: 'olga', withdrawn: false }), { what: 'the grant' });
    await consent('withdrawn', new Date(Date.now() - 60_000));
    await new Promise((r) => setTimeout(r, 500));
    const again = (await api('POST', '/admin/notifications', { kind: 'general', title: 'More features', body: 'We added search.', audience: { subjectIds: ['olga'] } })).json();
    await completed(again.id);
    await waitFor(() => mailsTo() === 2, { what: 'the general notice after the grant' });
  });
});

describe('general notices to listed people', () => {
  it('never publishes one as an announcement, even when nobody listed can be reached (a DPO\'s escalation was published)', async () => {
    const res = (await api('POST', '/admin/notifications', { kind: 'general', title: 'Erasure request er-1 needs attention', body: 'subject id sub_x; POST /v1/retention/admin/erasure-requests/er-1/retry', audience: { subjectIds: ['stf_no_contact_1'] } })).json();
    const done = await completed(res.id);
    expect(done.progress.byStatus).toMatchObject({ unreachable: 1 });
    expect(done.announcementIds ?? []).toEqual([]);
    const published = (await api('GET', '/public/announcements', undefined, null)).json();
    expect(JSON.stringify(published)).not.toContain('er-1');
  });
});
