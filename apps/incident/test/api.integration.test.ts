// The HTTP API's rules on the real database: who may call what (URL convention), bad input refused
// with a clear 4xx that changes nothing, incidents audited with a forward-only lifecycle and a
// regulator record, and user reports with replies, status and resolution (5.4.1, 2.2).
import { ErrorResponseSchema, compile } from '@pipp/contracts';
import { TestAuthority, waitFor } from '@pipp/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { incidentBody, startIncident } from './helpers.js';

const isError = compile(ErrorResponseSchema);
let authority: TestAuthority;
let svc: Awaited<ReturnType<typeof startIncident>>;
let operator: string;
let dpo: string;
let subject: (sub: string) => string;

beforeAll(async () => {
  authority = await TestAuthority.start();
  svc = await startIncident(authority);
  operator = authority.token({ sub: 'op-1', role: 'operator', sid: 'so1' });
  dpo = authority.token({ sub: 'dpo-1', role: 'dpo', sid: 'sd1' });
  subject = (sub) => authority.token({ sub, role: 'subject', sid: `s-${sub}` });
});
afterAll(async () => {
  await svc?.close();
  await authority?.close();
});

const call = (method: 'GET' | 'POST' | 'PATCH', url: string, token: string | null, payload?: unknown) =>
  svc.app.inject({ method, url: `/v1/incident${url}`, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' }, ...(payload !== undefined ? { payload: typeof payload === 'string' ? payload : JSON.stringify(payload) } : {}) });

describe('access (URL convention)', () => {
  it('keeps staff routes to operators and the DPO, subjects to their own data, announcements public', async () => {
    expect((await call('GET', '/admin/incidents', null)).statusCode).toBe(401);
    expect((await call('GET', '/admin/incidents', subject('amy'))).statusCode).toBe(403);
    expect((await call('GET', '/admin/incidents', authority.token({ sub: 'consent', role: 'service' }))).statusCode).toBe(403);
    expect((await call('GET', '/admin/incidents', dpo)).statusCode).toBe(200);
    expect((await call('GET', '/subjects/amy/reports', subject('bo'))).statusCode).toBe(403);
    expect((await call('GET', '/subjects/amy/reports', subject('amy'))).statusCode).toBe(200);
    expect((await call('GET', '/public/announcements', null)).statusCode).toBe(200);
    const forged = authority.unsignedToken({ sub: 'op-x', role: 'operator' });
    expect((await call('GET', '/admin/incidents', forged)).statusCode).toBe(401);
  });
});

describe('bad input', () => {
  it('answers with the one error shape naming the field, and stores nothing', async () => {
    const before = await svc.app.models.incidents.countDocuments({});
    const cases: [unknown, RegExp][] = [
      [{ ...incidentBody([]), severity: 'apocalyptic' }, /\/body\/severity/],
      [{ ...incidentBody([]), categories: ['shoe-size'] }, /\/body\/categories/],
      [{ ...incidentBody([]), extra: 1 }, /extra/],
      [{ ...incidentBody([]), title: { $gt: '' } }, /\/body\/title/],
      [{ ...incidentBody(['has space']) }, /\/body\/subjectIds/],
      ['{"title":', /not valid JSON/],
      ['{"title":"x","__proto__":{"admin":true}}', /./],
    ];
    for (const [payload, message] of cases) {
      const res = await call('POST', '/admin/incidents', operator, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(isError(res.json())).toBe(true);
      expect(res.json().message).toMatch(message);
    }
    // Times that cannot be (5.4.2: the notice says when it happened and was found): 400 naming the field.
    const times: [Record<string, string>, string][] = [
      [{ occurredAt: '0000-01-01T00:00:00Z' }, '/body/occurredAt'],
      [{ discoveredAt: '9999-12-31T23:59:59.999Z' }, '/body/discoveredAt'],
      [{ occurredAt: '2026-11-20T03:00:00Z', discoveredAt: '2026-11-20T02:00:00Z' }, '/body/occurredAt'],
    ];
    for (const [at, path] of times) {
      const res = await call('POST', '/admin/incidents', operator, incidentBody([], at));
      expect(res.json(), JSON.stringify(at)).toMatchObject({ statusCode: 400, code: 'PIPP_BAD_TIME', clause: '5.4.2', details: [{ path }] });
    }
    expect(await svc.app.models.incidents.countDocuments({})).toBe(before);
    expect((await call('GET', '/admin/incidents/no$such', operator)).statusCode).toBe(400);
    expect((await call('GET', '/admin/incidents/inc_missing', operator)).json()).toMatchObject({ statusCode: 404, code: 'PIPP_INCIDENT_NOT_FOUND' });
    expect((await call('GET', '/admin/reports?status[$ne]=x', operator)).statusCode).toBe(400);
    // Element names become document keys: operator characters are refused with 400, not a 500 (found by fuzzing).
    const notices = await svc.app.models.notifications.countDocuments({});
    for (const key of ['$set', 'a.b', 'x\u0000y', '']) {
      const res = await call('POST', '/admin/notifications', operator, { kind: 'general', title: 'key test', body: 'b', elements: { [key]: 'x' }, audience: { subjectIds: ['subj-k1'] } });
      expect(res.statusCode, JSON.stringify(key)).toBe(400);
    }
    expect(await svc.app.models.notifications.countDocuments({})).toBe(notices);
  });
});

describe('incidents', () => {
  it('audits every change, moves forward only, keeps a timeline and the regulator record', async () => {
    const created = (await call('POST', '/admin/incidents', operator, incidentBody(['amy']))).json();
    const patched = await call('PATCH', `/admin/incidents/${created.id}`, operator, { status: 'contained', measuresTaken: [...created.measuresTaken, 'Blocked the attacker\'s IP range'] });
    expect(patched.statusCode).toBe(200);
    expect(patched.json().timeline.at(-1)).toMatchObject({ kind: 'status', by: 'op-1', fields: ['measuresTaken', 'status'], text: 'open → contained' });
    const back = await call('PATCH', `/admin/incidents/${created.id}`, operator, { status: 'open' });
    expect(back.json()).toMatchObject({ statusCode: 409, code: 'PIPP_BAD_TRANSITION', clause: '5.4.2' });

    await call('POST', `/admin/incidents/${created.id}/timeline`, operator, { text: 'Forensics confirm no passwords were read' });
    const more = await call('POST', `/admin/incidents/${created.id}/affected-subjects`, operator, { subjectIds: ['amy', 'bo', 'cy'] });
    expect(more.json()).toEqual({ added: 2, affectedCount: 3 });

    const reg = await call('POST', `/admin/incidents/${created.id}/regulator-reports`, dpo, {
      regulator: 'Cyberspace Administration (municipal office)', reportedAt: new Date().toISOString(), method: 'online portal', reference: 'CAC-2026-1121-07', summary: 'Initial report within the statutory period',
    });
    expect(reg.statusCode).toBe(201);
    expect((await call('GET', `/admin/incidents/${created.id}/regulator-reports`, operator)).json()).toEqual([expect.objectContaining({ reference: 'CAC-2026-1121-07', recordedBy: 'dpo-1' })]);

    const closed = await call('PATCH', `/admin/incidents/${created.id}`, dpo, { status: 'closed' });
    expect(closed.json().status).toBe('closed');
    expect((await call('PATCH', `/admin/incidents/${created.id}`, operator, { advice: 'x' })).json()).toMatchObject({ statusCode: 409, code: 'PIPP_INCIDENT_CLOSED' });

    const incident = (await call('GET', `/admin/incidents/${created.id}`, operator)).json();
    expect(incident.timeline.map((t: { kind: string }) => t.kind)).toEqual(['created', 'status', 'note', 'affected-subjects', 'regulator-report', 'status']);
    const audit = (await call('GET', `/admin/incidents/${created.id}/audit`, dpo)).json();
    expect(audit.map((a: { action: string; actor: string }) => `${a.action}:${a.actor}`)).toEqual([
      'incident.created:op-1', 'incident.updated:op-1', 'incident.timeline-added:op-1', 'incident.affected-subjects-added:op-1',
      'incident.regulator-report-recorded:dpo-1', 'incident.updated:dpo-1',
    ]);
    expect(audit[1].fields).toEqual(['measuresTaken', 'status']);
  });

  it('counts affected subjects added in parallel, and notifies them once per change of the incident (5.4.2)', async () => {
    const created = (await call('POST', '/admin/incidents', operator, incidentBody([]))).json();
    // A breaker helper added 10 subjects in 10 parallel calls: 3 answered 200, 7 409, and the count said 2.
    const ids = Array.from({ length: 10 }, (_, i) => `par-${i}`);
    const adds = await Promise.all([...ids, ...ids].map((id) => call('POST', `/admin/incidents/${created.id}/affected-subjects`, operator, { subjectIds: [id] })));
    expect(adds.map((r) => r.statusCode)).toEqual(Array(20).fill(200));
    expect(adds.reduce((n, r) => n + r.json().added, 0)).toBe(10);
    expect((await call('GET', `/admin/incidents/${created.id}`, operator)).json().affectedCount).toBe(10);

    // Ten parallel calls to notify (it sent every subject ten notices): one goes out.
    const sends = await Promise.all(Array.from({ length: 10 }, () => call('POST', `/admin/incidents/${created.id}/notifications`, operator, {})));
    expect(sends.filter((r) => r.statusCode === 202)).toHaveLength(1);
    for (const r of sends.filter((x) => x.statusCode !== 202)) expect(r.json()).toMatchObject({ statusCode: 409, code: expect.stringMatching(/^PIPP_(NOTIFICATION_IN_PROGRESS|ALREADY_NOTIFIED)$/), clause: '5.4.2' });
    const sent = sends.find((r) => r.statusCode === 202)!.json();
    await waitFor(async () => (await svc.app.models.notifications.findById(sent.id).lean())?.status === 'completed', { what: 'the notification to complete' });
    // Nothing changed since: refused, naming the notification; a change of the incident allows the next one.
    const again = await call('POST', `/admin/incidents/${created.id}/notifications`, operator, {});
    expect(again.json()).toMatchObject({ statusCode: 409, code: 'PIPP_ALREADY_NOTIFIED', message: expect.stringContaining(sent.id) });
    // Listing subjects already affected changes nothing (it let everyone be told the same again).
    const known = (await svc.app.models.incidents.findById(created.id).lean())!;
    expect((await call('POST', `/admin/incidents/${created.id}/affected-subjects`, operator, { subjectIds: ids.slice(0, 3) })).json()).toEqual({ added: 0, affectedCount: 10 });
    expect((await call('POST', `/admin/incidents/${created.id}/notifications`, operator, {})).json()).toMatchObject({ statusCode: 409, code: 'PIPP_ALREADY_NOTIFIED' });
    const after = (await svc.app.models.incidents.findById(created.id).lean())!;
    expect(after.updatedAt).toEqual(known.updatedAt);
    expect(after.timeline.filter((e) => e.kind === 'affected-subjects')).toHaveLength(known.timeline.filter((e) => e.kind === 'affected-subjects').length);
    await call('POST', `/admin/incidents/${created.id}/timeline`, operator, { text: 'The attacker also read delivery addresses' });
    expect((await call('POST', `/admin/incidents/${created.id}/notifications`, operator, {})).statusCode).toBe(202);
    expect((await svc.app.models.incidents.findById(created.id).lean())!.notificationIds).toHaveLength(2);
  });

  it('refuses a report to the regulator dated in the future, before 1970 or before the incident was discovered', async () => {
    const discoveredAt = new Date(Date.now() - 2 * 86_400_000);
    const created = (await call('POST', '/admin/incidents', operator, incidentBody(['amy'], { discoveredAt: discoveredAt.toISOString() }))).json();
    const report = (reportedAt: string) => call('POST', `/admin/incidents/${created.id}/regulator-reports`, dpo, { regulator: 'CAC', reportedAt, method: 'portal', summary: 'Initial report' });
    for (const reportedAt of ['0000-01-01T00:00:00Z', '9999-12-31T23:59:59Z', '1990-11-30T11:00:00Z', new Date(discoveredAt.getTime() - 60_000).toISOString()]) {
      expect((await report(reportedAt)).json()).toMatchObject({ statusCode: 400, code: 'PIPP_BAD_TIME', details: [{ path: '/body/reportedAt' }] });
    }
    expect((await call('GET', `/admin/incidents/${created.id}/regulator-reports`, dpo)).json()).toEqual([]);
    expect((await report(new Date().toISOString())).statusCode).toBe(201);
  });

  it('refuses to notify an incident with nobody affected', async () => {
    const created = (await call('POST', '/admin/incidents', operator, incidentBody([]))).json();
    expect((await call('POST', `/admin/incidents/${created.id}/notifications`, operator, {})).json()).toMatchObject({ statusCode: 409, code: 'PIPP_EMPTY_AUDIENCE', clause: '5.4.2' });
  });

  it('refuses an operator notice that lacks what its clause requires', async () => {
    const res = await call('POST', '/admin/notifications', operator, { kind: 'business-shutdown', title: 'Closing', elements: { effectiveAt: '2027-01-01' }, audience: { allSubjects: true } });
    expect(res.json()).toMatchObject({ statusCode: 422, code: 'PIPP_INCOMPLETE_NOTICE', clause: '2.4.2(5)', details: [{ path: '/body/elements/dataHandling' }] });
  });
});

describe('user reports (5.4.1, 2.2)', () => {
  it('runs a report from opening to resolution with replies on both sides', async () => {
    const amy = subject('amy');
    const opened = await call('POST', '/subjects/amy/reports', amy, { kind: 'wrong-information', title: 'Wrong address used', text: 'My delivery went to an old address you still had on file.' });
    expect(opened.statusCode).toBe(201);
    const r = opened.json();
    expect(r).toMatchObject({ status: 'open', clause: '2.2', openedBy: 'subject', subjectId: 'amy' });

    const queue = (await call('GET', '/admin/reports?status=open', operator)).json();
    expect(queue.items.map((x: { id: string }) => x.id)).toContain(r.id);
    const answered = await call('POST', `/admin/reports/${r.id}/replies`, operator, { text: 'We corrected it; can you confirm?', status: 'awaiting-subject' });
    expect(answered.json()).toMatchObject({ status: 'awaiting-subject', replies: [{ by: 'support' }] });
    const back = await call('POST', `/subjects/amy/reports/${r.id}/replies`, amy, { text: 'Confirmed, thanks' });
    expect(back.json()).toMatchObject({ status: 'in-progress' });
    expect((await call('POST', `/subjects/amy/reports/${r.id}/replies`, subject('bo'), { text: 'me too' })).statusCode).toBe(403);
    expect((await call('GET', `/subjects/bo/reports/${r.id}`, subject('bo'))).statusCode).toBe(404);

    expect((await call('PATCH', `/admin/reports/${r.id}`, operator, { status: 'resolved' })).json()).toMatchObject({ statusCode: 400, code: 'PIPP_VALIDATION', details: [{ path: '/body/resolution' }] });
    const resolved = await call('PATCH', `/admin/reports/${r.id}`, operator, { status: 'resolved', resolution: 'Address corrected; goodwill voucher sent' });
    expect(resolved.json()).toMatchObject({ status: 'resolved', resolution: 'Address corrected; goodwill voucher sent' });
    await call('PATCH', `/admin/reports/${r.id}`, operator, { status: 'closed' });
    expect((await call('POST', `/subjects/amy/reports/${r.id}/replies`, amy, { text: 'one more thing' })).json()).toMatchObject({ statusCode: 409, code: 'PIPP_REPORT_CLOSED', clause: '2.2' });

    const mine = (await call('GET', '/subjects/amy/reports', amy)).json();
    expect(mine[0]).toMatchObject({ id: r.id, status: 'closed', replies: [{ by: 'support' }, { by: 'subject' }] });
    const audit = await svc.app.models.audit.find({ 'target.id': r.id }).sort({ at: 1 }).lean();
    expect(audit.map((a) => `${a.action}:${a.role}`)).toEqual(['report.opened:subject', 'report.replied:operator', 'report.replied:subject', 'report.updated:operator', 'report.updated:operator']);
  });

  it('lets support open a report for a subject (audited as support)', async () => {
    const res = await call('POST', '/subjects/cy/reports', operator, { kind: 'account-leak', title: 'Called in: password leaked', text: 'Subject called the hotline.' });
    expect(res.json()).toMatchObject({ openedBy: 'support', clause: '5.4.1' });
  });
});
