// The erasure saga on the real broker and database (policy 4.1, 4.2, DESIGN.md "The erasure saga"):
// retention publishes each request through its outbox, acts as a participant itself, and tracks the
// other participants, whose replies the test produces as real events (SimulatedParticipants). It
// retries silent and failed participants with backoff, escalates to the DPO, lets an operator retry,
// refuses under a legal hold with a coded reason, joins duplicates, and completes only when every
// participant answered. The subject follows the progress.
import type { ErasureParticipant } from '@pipp/contracts';
import { waitFor } from '@pipp/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimulatedParticipants, type Behaviour, type Requested } from './fixtures/simulated.js';
import { events, Harness, type RetentionApp } from './helpers.js';

let h: Harness;
let env: Record<string, string>;
let app: RetentionApp;
let sim: SimulatedParticipants;
const OTHERS: ErasureParticipant[] = ['identity', 'consent', 'data-sharing', 'incident'];
/** Per subject, how each simulated participant behaves (default: complete at once). */
const script = new Map<string, (p: ErasureParticipant, r: Requested) => Behaviour>();

beforeAll(async () => {
  h = await Harness.start();
  env = h.env({ ERASURE_MAX_AUTO_ATTEMPTS: '2' });
  app = await h.retention(env);
  sim = await SimulatedParticipants.start({ prefix: env.KAFKA_TOPIC_PREFIX!, participants: OTHERS, behave: (p, r) => script.get(r.subjectId)?.(p, r) ?? 'complete' });
});
afterAll(async () => {
  await sim?.stop();
  await h?.close();
});

const ask = (subjectId: string, body: Record<string, unknown>, headers = h.auth(subjectId)) =>
  app.inject({ method: 'POST', url: `/v1/retention/subjects/${subjectId}/erasure-requests`, headers, payload: body });
const view = async (subjectId: string, requestId: string) =>
  (await app.inject({ url: `/v1/retention/subjects/${subjectId}/erasure-requests/${requestId}`, headers: h.auth(subjectId) })).json();
const completed = (subjectId: string, requestId: string, timeoutMs = 30_000) =>
  waitFor(async () => { const v = await view(subjectId, requestId); return v.status === 'completed' ? v : null; }, { what: `request ${requestId} to complete`, timeoutMs });

describe('a subject erases their account', () => {
  it('publishes the request, tracks every participant, and completes when all answered', async () => {
    script.set('subj-a', (p) => (p === 'data-sharing'
      ? { counts: { erased: 4, anonymized: 0, kept: 2 }, kept: [{ category: 'transaction-record', legalBasis: 'legal-obligation', purgeAt: '2030-01-01T00:00:00.000Z', reason: 'E-Commerce Law art. 31' }] }
      : 'complete'));
    const res = await ask('subj-a', { scope: { kind: 'account' }, ground: '4.2.2' });
    expect(res.statusCode).toBe(201);
    const created = res.json();
    expect(created).toMatchObject({ status: 'in-progress', ground: '4.2.2', origin: 'subject', requestedBy: { role: 'subject', actorId: 'subj-a' }, progress: { completed: 0, total: 5 } });
    // Deadline: 15 days by default.
    expect(Date.parse(created.deadline) - Date.parse(created.createdAt)).toBe(15 * 86_400_000);
    // The statutory hold of the seeded policies travels with the request (E-Commerce Law art. 31).
    expect(created.legalHolds).toEqual([expect.objectContaining({ category: 'transaction-record', legalBasis: 'legal-obligation' })]);

    const req = (await events(env, 'privacy.erasure.requested', (e) => e.some((x) => x.payload.requestId === created.requestId))).find((x) => x.payload.requestId === created.requestId)!;
    expect(req.subject).toBe('subj-a');
    expect(req.payload).toMatchObject({ attempt: 1, origin: 'subject', scope: { kind: 'account' }, participants: ['identity', 'consent', 'data-sharing', 'incident', 'retention'] });

    const done = await completed('subj-a', created.requestId);
    expect(done.progress).toEqual({ completed: 5, total: 5 });
    expect(done.totals).toEqual({ erased: 3 * 3 + 4, anonymized: 3, kept: 2 + 1 });
    const retention = done.participants.find((p: { participant: string }) => p.participant === 'retention');
    expect(retention.kept).toEqual([expect.objectContaining({ category: 'erasure-request', legalBasis: 'legal-obligation' })]);
    // The subject reads why in words of the law; a participant's own text (it may name a hold's evidence,
    // such as a police request number) is for staff only.
    const sharing = done.participants.find((p: { participant: string }) => p.participant === 'data-sharing');
    expect(sharing.kept).toEqual([expect.objectContaining({ category: 'transaction-record', reason: expect.stringMatching(/^Kept because the law requires it \(Performance of obligations/) })]);
    expect(JSON.stringify(done)).not.toContain('E-Commerce Law art. 31');
    const staffView = (await app.inject({ url: `/v1/retention/admin/erasure-requests/${created.requestId}`, headers: h.auth('dpo-1', 'dpo') })).json();
    expect(staffView.participants.find((p: { participant: string }) => p.participant === 'data-sharing').kept[0].reason).toBe('E-Commerce Law art. 31');
    // What was kept by law is isolated on record with its basis and purge date.
    const kept = await app.store.kept.find({ requestId: created.requestId }).lean();
    expect(kept.map((k) => [k.participant, k.category, k.state])).toEqual(expect.arrayContaining([['data-sharing', 'transaction-record', 'isolated'], ['retention', 'erasure-request', 'isolated']]));
    // The subject is on the backup suppression list, and completion was announced.
    await waitFor(async () => (await app.store.suppressions.findById(created.requestId).lean())?.completedAt, { what: 'the suppression entry to record the completion' });
    // (Lifted at once when no backup generation is recorded that could hold the subject, as here.)
    const suppression = await app.store.suppressions.findById(created.requestId).lean();
    expect(suppression).toMatchObject({ subjectId: 'subj-a', status: expect.stringMatching(/^(active|lifted)$/) });
    const completions = await events(env, 'privacy.erasure.completed', (e) => e.some((x) => x.payload.requestId === created.requestId));
    expect(completions.filter((e) => e.payload.requestId === created.requestId)).toHaveLength(1);
    // The ledger holds ids, grounds and counts only.
    const raw = await app.mongo.connection.collection('erasure_requests').findOne({ _id: created.requestId as never });
    expect(Object.keys(raw!).sort()).not.toContain('phone');
    // A closed request is joined by nothing: the next request for the subject and scope is a new one.
    expect(await app.store.openRequests.findById(`erasure|subj-a|account`).lean()).toBeNull();
    const next = await ask('subj-a', { scope: { kind: 'account' }, ground: '4.2.2' });
    expect(next.statusCode).toBe(201);
    expect(next.json().requestId).not.toBe(created.requestId);
    await completed('subj-a', next.json().requestId);
  });

  it('joins a new request for the same subject and scope to the open one', async () => {
    script.set('subj-j', () => 'silent');
    const first = (await ask('subj-j', { scope: { kind: 'account' } })).json();
    const again = await ask('subj-j', { scope: { kind: 'account' }, ground: '4.2.4' });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ requestId: first.requestId, joined: 1 });
    const narrower = await ask('subj-j', { scope: { kind: 'categories', categories: ['profile'] } });
    expect(narrower.statusCode).toBe(200);
    expect(narrower.json()).toMatchObject({ requestId: first.requestId, joined: 2 });
    // A categories request is its own when no account erasure is open.
    script.set('subj-k', () => 'silent');
    const cat = (await ask('subj-k', { scope: { kind: 'categories', categories: ['profile', 'activity-log'] } })).json();
    expect(cat.participants.map((p: { participant: string }) => p.participant)).toEqual(['identity', 'retention']);
    const same = await ask('subj-k', { scope: { kind: 'categories', categories: ['activity-log', 'profile'] } });
    expect(same.json().requestId).toBe(cat.requestId);
  });

  it('never counts a request without answers as complete', async () => {
    script.set('subj-q', () => 'silent');
    const r = (await ask('subj-q', { scope: { kind: 'account' } })).json();
    await new Promise((res) => setTimeout(res, 1500));
    const v = await view('subj-q', r.requestId);
    expect(v.status).toBe('in-progress');
    expect(v.progress.completed).toBe(1); // retention itself; the silent four keep it open
  });
});

describe('retries, escalation and operator retry', () => {
  it('redelivers to a silent participant only, with a higher attempt, until it answers', async () => {
    let calls = 0;
    script.set('subj-s', (p) => (p === 'consent' && (calls += 1) < 3 ? 'silent' : 'complete'));
    const r = (await ask('subj-s', { scope: { kind: 'account' } })).json();
    // Watch the request: once a participant is seen completed while the request is at attempt m, no
    // redelivery after m may name it. (Under load a reply may land after a retry was planned; then that
    // participant is rightly asked again, and this never wrongly fails.)
    const completedBy = new Map<string, number>();
    const done = await waitFor(async () => {
      const v = await view('subj-s', r.requestId);
      const m = Math.max(...v.participants.map((p: { attempt: number }) => p.attempt));
      for (const p of v.participants) if (p.state === 'completed' && !completedBy.has(p.participant)) completedBy.set(p.participant, m);
      return v.status === 'completed' ? v : null;
    }, { what: 'the request to complete', timeoutMs: 30_000, intervalMs: 20 });
    const consent = sim.received.filter((x) => x.request.requestId === r.requestId && x.participant === 'consent');
    expect(consent.map((x) => x.request.attempt)).toEqual([1, 2, 3]);
    const redelivered = (await events(env, 'privacy.erasure.requested', (e) => e.filter((x) => x.payload.requestId === r.requestId).length >= 3)).filter((x) => x.payload.requestId === r.requestId);
    expect(redelivered.map((x) => x.payload.attempt)).toEqual([1, 2, 3]);
    for (const x of redelivered.slice(1)) {
      expect(x.payload.participants).toContain('consent');
      const stale = x.payload.participants!.filter((p) => (completedBy.get(p) ?? Infinity) < x.payload.attempt);
      expect(stale, `attempt ${x.payload.attempt} named participants already completed`).toEqual([]);
    }
    // The watch saw another participant complete before the last retry (else the check proved nothing).
    expect(Math.min(...OTHERS.filter((p) => p !== 'consent').map((p) => completedBy.get(p) ?? Infinity))).toBeLessThan(3);
    expect(done.participants.find((p: { participant: string }) => p.participant === 'consent')).toMatchObject({ state: 'completed', attempt: 3 });
  });

  it('retries a failing participant, tells the DPO when retries are used up, and completes after an operator retry', async () => {
    let failing = true;
    script.set('subj-f', (p) => (p === 'incident' && failing ? { status: 'failed', error: 'contact store unavailable' } : 'complete'));
    const r = (await ask('subj-f', { scope: { kind: 'account' } })).json();
    const exhausted = await waitFor(async () => {
      const v = (await app.inject({ url: `/v1/retention/admin/erasure-requests/${r.requestId}`, headers: h.auth('op-1', 'operator') })).json();
      return v.participants.find((p: { participant: string; exhausted?: boolean }) => p.participant === 'incident' && p.exhausted) ? v : null;
    }, { what: 'incident to exhaust its automatic retries', timeoutMs: 30_000 });
    expect(exhausted.participants.find((p: { participant: string }) => p.participant === 'incident')).toMatchObject({ state: 'failed', error: 'contact store unavailable' });
    // The first delivery and ERASURE_MAX_AUTO_ATTEMPTS (2) automatic ones, no more. (The attempt number
    // is the request's: under load another participant's late reply may add a redelivery of its own.)
    expect(sim.received.filter((x) => x.request.requestId === r.requestId && x.participant === 'incident')).toHaveLength(3);
    // The subject sees the state but not the internal error.
    expect((await view('subj-f', r.requestId)).participants.find((p: { participant: string }) => p.participant === 'incident').error).toBeUndefined();

    const notices = await events(env, 'privacy.notification.requested', (e) => e.some((x) => x.payload.notificationId === `esc-${r.requestId}-retries-exhausted`));
    const notice = notices.find((x) => x.payload.notificationId === `esc-${r.requestId}-retries-exhausted`)!;
    expect(notice.payload).toMatchObject({ audience: { subjectIds: ['dpo-1'] }, requestedBy: 'retention', clause: '4.2' });
    expect(notice.payload.body).toMatch(/incident: failed \(automatic retries used up\), last error: contact store unavailable/);
    const escalated = (await app.inject({ url: '/v1/retention/admin/erasure-requests?escalated=true&status=in-progress', headers: h.auth('dpo-1', 'dpo') })).json();
    expect(escalated.items.map((i: { requestId: string }) => i.requestId)).toContain(r.requestId);

    // A subject may not retry; an operator may, only what is not completed.
    expect((await app.inject({ method: 'POST', url: `/v1/retention/admin/erasure-requests/${r.requestId}/retry`, headers: h.auth('subj-f'), payload: {} })).statusCode).toBe(403);
    const bad = await app.inject({ method: 'POST', url: `/v1/retention/admin/erasure-requests/${r.requestId}/retry`, headers: h.auth('op-1', 'operator'), payload: { participants: ['identity'] } });
    expect(bad.statusCode).toBe(409);
    expect(bad.json()).toMatchObject({ code: 'PIPP_ERASURE_NOT_RETRYABLE', clause: '4.1', message: 'identity has already completed' });
    failing = false;
    const retried = await app.inject({ method: 'POST', url: `/v1/retention/admin/erasure-requests/${r.requestId}/retry`, headers: h.auth('op-1', 'operator'), payload: { participants: ['incident'] } });
    expect(retried.statusCode).toBe(200);
    await completed('subj-f', r.requestId);
    const audit = await app.store.audit.find({ action: 'erasure-request.retry', 'target.id': r.requestId }).lean();
    expect(audit).toHaveLength(1);
    expect(audit[0]!.actor).toEqual({ role: 'operator', actorId: 'op-1' });
  });

  it('tells the DPO when the deadline nears and nobody has finished', async () => {
    script.set('subj-d', () => 'silent');
    const deadline = new Date(Date.now() + 3600_000).toISOString(); // within the default 72 h warning window
    const res = await ask('subj-d', { scope: { kind: 'categories', categories: ['activity-log'] }, ground: '4.2.1', deadline, reference: 'TICKET-9' }, h.auth('op-2', 'operator'));
    expect(res.statusCode).toBe(201);
    const r = res.json();
    expect(r).toMatchObject({ origin: 'operator', deadline, reference: 'TICKET-9' });
    const notices = await events(env, 'privacy.notification.requested', (e) => e.some((x) => x.payload.notificationId === `esc-${r.requestId}-deadline-near`));
    expect(notices.find((x) => x.payload.notificationId === `esc-${r.requestId}-deadline-near`)!.payload.body).toMatch(/identity: requested/);
  });

  it('moves the deadline up when a request with an earlier one joins, never back (4.2)', async () => {
    script.set('subj-j', () => 'silent');
    const first = (await ask('subj-j', { scope: { kind: 'categories', categories: ['activity-log'] } })).json();
    const sooner = new Date(Date.now() + 86_400_000).toISOString();
    const joined = await ask('subj-j', { scope: { kind: 'categories', categories: ['activity-log'] }, ground: '4.2.1', deadline: sooner }, h.auth('op-2', 'operator'));
    expect(joined.statusCode).toBe(200);
    expect(joined.json()).toMatchObject({ requestId: first.requestId, deadline: sooner });
    const later = await ask('subj-j', { scope: { kind: 'categories', categories: ['activity-log'] }, ground: '4.2.1', deadline: new Date(Date.now() + 2 * 86_400_000).toISOString() }, h.auth('op-2', 'operator'));
    expect(later.json()).toMatchObject({ requestId: first.requestId, deadline: sooner });
    expect((await app.store.requests.findById(first.requestId).lean())!.nextActionAt!.getTime()).toBeLessThan(Date.parse(sooner));
  });
});

describe('refusals and bad input', () => {
  it('refuses under a blocking legal hold with a coded reason and publishes nothing', async () => {
    const hold = await app.inject({ method: 'POST', url: '/v1/retention/admin/legal-holds', headers: h.auth('dpo-1', 'dpo'), payload: { subjectId: 'subj-h', mode: 'block', legalBasis: 'law-enforcement', evidenceRef: 'Court order 2026-044', until: new Date(Date.now() + 30 * 86_400_000).toISOString() } });
    expect(hold.statusCode).toBe(201);
    // A hold has a real end (5.1): at most LEGAL_HOLD_MAX_DAYS ahead (a breaker helper held until 9999).
    const forever = await app.inject({ method: 'POST', url: '/v1/retention/admin/legal-holds', headers: h.auth('dpo-1', 'dpo'), payload: { subjectId: 'subj-h', mode: 'isolate', legalBasis: 'law-enforcement', evidenceRef: 'Court order 2026-045', until: '9999-12-31T00:00:00Z' } });
    expect(forever.json()).toMatchObject({ statusCode: 400, code: 'PIPP_BAD_TIME', clause: '5.1', message: expect.stringMatching(/at most 10950 days/) });
    const res = await ask('subj-h', { scope: { kind: 'account' } });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ status: 'refused', refusal: { code: 'PIPP_ERASURE_LEGAL_HOLD', clause: '4.1' }, participants: [] });
    const list = (await app.inject({ url: '/v1/retention/subjects/subj-h/erasure-requests', headers: h.auth('subj-h') })).json();
    expect(list.items[0].status).toBe('refused');
    // Released, the subject can ask again and it proceeds.
    expect((await app.inject({ method: 'POST', url: `/v1/retention/admin/legal-holds/${hold.json().holdId}/release`, headers: h.auth('dpo-1', 'dpo') })).statusCode).toBe(200);
    const again = await ask('subj-h', { scope: { kind: 'account' } });
    expect(again.json().status).toBe('in-progress');
    const published = await events(env, 'privacy.erasure.requested', (e) => e.some((x) => x.payload.requestId === again.json().requestId));
    expect(published.some((x) => x.payload.requestId === res.json().requestId)).toBe(false);
  });

  it('applies a legal hold placed during an erasure to the participants not yet done (4.1)', async () => {
    let held = false;
    script.set('subj-lh', (p) => (p === 'consent' && !held ? 'silent' : 'complete'));
    const r = (await ask('subj-lh', { scope: { kind: 'account' } })).json();
    await waitFor(async () => (await view('subj-lh', r.requestId)).participants.filter((p: { state: string }) => p.state === 'completed').length === 4, { what: 'every participant but consent to complete' });
    const until = new Date(Date.now() + 30 * 86_400_000);
    const hold = await app.inject({ method: 'POST', url: '/v1/retention/admin/legal-holds', headers: h.auth('dpo-1', 'dpo'), payload: { subjectId: 'subj-lh', mode: 'block', categories: ['activity-log'], legalBasis: 'law-enforcement', evidenceRef: 'Preservation order 2026-101', until: until.toISOString() } });
    expect(hold.statusCode).toBe(201);
    expect(hold.json().appliedTo).toEqual([r.requestId]);
    held = true;
    const stored = await app.store.requests.findById(r.requestId).lean();
    expect(stored!.legalHolds).toContainEqual(expect.objectContaining({ category: 'activity-log', legalBasis: 'law-enforcement', purgeAt: until }));
    // Consent, not done yet, is asked again with the hold; those done are not asked again.
    const asked = await waitFor(() => sim.received.find((x) => x.request.requestId === r.requestId && x.request.attempt === 2) ?? null, { what: 'the request again, with the hold' });
    expect(asked.participant).toBe('consent');
    expect(asked.request.legalHolds).toContainEqual(expect.objectContaining({ category: 'activity-log', legalBasis: 'law-enforcement', evidenceRef: 'Preservation order 2026-101' }));
    expect(sim.received.filter((x) => x.request.requestId === r.requestId && x.participant !== 'consent').map((x) => x.request.attempt)).toEqual([1, 1, 1]);
    await completed('subj-lh', r.requestId);
    // The same hold again changes nothing; a request no longer open is not touched.
    const again = await app.inject({ method: 'POST', url: '/v1/retention/admin/legal-holds', headers: h.auth('dpo-1', 'dpo'), payload: { subjectId: 'subj-lh', mode: 'isolate', categories: ['activity-log'], legalBasis: 'law-enforcement', evidenceRef: 'Preservation order 2026-101', until: until.toISOString() } });
    expect(again.json().appliedTo).toEqual([]);
  });

  it('lets a released hold go from an open erasure: asked again without it, and what is kept under it purged', async () => {
    let released = false;
    script.set('subj-lr', (p) => (p === 'consent' && !released ? 'silent' : 'complete'));
    const r = (await ask('subj-lr', { scope: { kind: 'account' } })).json();
    const until = new Date(Date.now() + 60 * 86_400_000);
    const hold = (await app.inject({ method: 'POST', url: '/v1/retention/admin/legal-holds', headers: h.auth('dpo-1', 'dpo'), payload: { subjectId: 'subj-lr', mode: 'isolate', categories: ['activity-log'], legalBasis: 'law-enforcement', evidenceRef: 'Order 1', until: until.toISOString() } })).json();
    expect(hold.appliedTo).toEqual([r.requestId]);
    // A participant already keeps something under the hold (as a completed one would have reported).
    await app.store.kept.create({ _id: `${r.requestId}:identity:activity-log`, requestId: r.requestId, subjectId: 'subj-lr', participant: 'identity', category: 'activity-log', legalBasis: 'law-enforcement', purgeAt: until, reason: 'held', state: 'isolated', recordedAt: new Date() });
    const release = await app.inject({ method: 'POST', url: `/v1/retention/admin/legal-holds/${hold.holdId}/release`, headers: h.auth('dpo-1', 'dpo') });
    expect(release.json()).toMatchObject({ status: 'released', releasedFrom: [r.requestId] });
    released = true;
    const stored = await app.store.requests.findById(r.requestId).lean();
    expect(stored!.legalHolds.map((x) => x.category)).not.toContain('activity-log');
    const asked = await waitFor(() => sim.received.find((x) => x.request.requestId === r.requestId && x.request.attempt === 3) ?? null, { what: 'the request again, without the hold' });
    expect(asked.request.legalHolds.map((x) => x.category)).not.toContain('activity-log');
    expect((await app.store.kept.findById(`${r.requestId}:identity:activity-log`).lean())!.purgeAt.getTime()).toBeLessThanOrEqual(Date.now());
    await completed('subj-lr', r.requestId);
    // Both are announced, for what deletes PI outside the saga (identity after a consent withdrawal).
    const changes = (await events(env, 'privacy.legal-hold.changed', (e) => e.filter((x) => x.payload.holdId === hold.holdId).length >= 2))
      .filter((x) => x.payload.holdId === hold.holdId);
    expect(changes.map((x) => x.payload.status)).toEqual(['active', 'released']);
    expect(changes[0]).toMatchObject({ subject: 'subj-lr', payload: { subjectId: 'subj-lr', categories: ['activity-log'], mode: 'isolate', legalBasis: 'law-enforcement', until: until.toISOString() } });
  });

  it('answers bad input with a clear 4xx and changes nothing', async () => {
    const before = await app.store.requests.countDocuments({ subjectId: 'subj-x' });
    const cases: [Record<string, unknown>, number, string][] = [
      [{ scope: { kind: 'account' }, ground: '5.1' }, 400, 'PIPP_ERASURE_GROUND_NOT_ADMISSIBLE'],
      [{ scope: { kind: 'account' }, ground: '2.4.2(5)' }, 400, 'PIPP_ERASURE_GROUND_NOT_ADMISSIBLE'],
      [{ scope: { kind: 'categories', categories: [] } }, 400, 'PIPP_VALIDATION'],
      [{ scope: { kind: 'categories', categories: ['no-such'] } }, 400, 'PIPP_VALIDATION'],
      [{ scope: { kind: 'account' }, $where: 'x' }, 400, 'PIPP_VALIDATION'],
      [{ scope: { kind: 'account', $ne: 1 } }, 400, 'PIPP_VALIDATION'],
      [{ scope: { kind: 'account' }, deadline: new Date(Date.now() + 1000).toISOString() }, 403, 'PIPP_STAFF_ONLY'],
    ];
    for (const [body, status, code] of cases) {
      const res = await ask('subj-x', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(status);
      expect(res.json().code).toBe(code);
    }
    const ground = await ask('subj-x', { scope: { kind: 'account' }, ground: '5.1' });
    expect(ground.json().clause).toBe('5.1');
    const past = await ask('subj-x', { scope: { kind: 'account' }, deadline: '2020-01-01T00:00:00Z' }, h.auth('op-1', 'operator'));
    expect(past.json()).toMatchObject({ statusCode: 400, code: 'PIPP_BAD_TIME' });
    // Later than the default would put off the DPO's escalations (a breaker helper set 9999-12-31).
    const late = await ask('subj-x', { scope: { kind: 'account' }, deadline: '9999-12-31T23:59:59Z' }, h.auth('op-1', 'operator'));
    expect(late.json()).toMatchObject({ statusCode: 400, code: 'PIPP_BAD_TIME', message: expect.stringMatching(/earlier than the default of 15 days/) });
    expect(await app.store.requests.countDocuments({ subjectId: 'subj-x' })).toBe(before);
  });

  it('lets a subject reach only their own requests; staff reach anyone\'s, audited', async () => {
    const r = (await ask('subj-o', { scope: { kind: 'categories', categories: ['profile'] } })).json();
    expect((await app.inject({ url: `/v1/retention/subjects/subj-o/erasure-requests/${r.requestId}`, headers: h.auth('subj-p') })).statusCode).toBe(403);
    expect((await app.inject({ url: `/v1/retention/subjects/subj-p/erasure-requests/${r.requestId}`, headers: h.auth('subj-p') })).statusCode).toBe(404);
    expect((await app.inject({ url: `/v1/retention/subjects/subj-o/erasure-requests/${r.requestId}` })).statusCode).toBe(401);
    expect((await app.inject({ url: '/v1/retention/admin/erasure-requests', headers: h.auth('subj-o') })).statusCode).toBe(403);
    const staff = await app.inject({ url: `/v1/retention/subjects/subj-o/erasure-requests/${r.requestId}`, headers: h.auth('op-3', 'operator') });
    expect(staff.statusCode).toBe(200);
    expect(await app.store.audit.countDocuments({ action: 'erasure-request.read', actor: { role: 'operator', actorId: 'op-3' }, subjectId: 'subj-o' })).toBe(1);
  });

  it('lets the requester follow a request with its status key, without signing in (an account erasure ends the sessions)', async () => {
    const first = (await ask('subj-sk', { scope: { kind: 'account' } })).json();
    expect(first.statusKey).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const joined = await ask('subj-sk', { scope: { kind: 'account' }, ground: '4.2.5' });
    expect(joined.statusCode).toBe(200);
    expect(joined.json()).toMatchObject({ requestId: first.requestId });
    expect(joined.json().statusKey).not.toBe(first.statusKey);
    const follow = (key?: string, requestId = first.requestId as string) => app.inject({ url: `/v1/retention/public/erasure-requests/${requestId}`, headers: key ? { 'x-pipp-status-key': key } : {} });
    // Either key shows the request, as its subject sees it; it is stored hashed, never shown back.
    for (const key of [first.statusKey, joined.json().statusKey]) {
      const res = await follow(key);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ requestId: first.requestId, subjectId: 'subj-sk', joined: 1 });
      expect(res.json()).not.toHaveProperty('escalations');
      expect(res.body).not.toContain(key);
    }
    expect(JSON.stringify(await app.store.requests.findById(first.requestId).lean())).not.toContain(first.statusKey);
    // A wrong key and an unknown request look alike; no key is a validation error.
    expect((await follow('A'.repeat(32))).json()).toMatchObject({ code: 'PIPP_ERASURE_REQUEST_NOT_FOUND' });
    expect((await follow(first.statusKey, 'er-unknown')).statusCode).toBe(404);
    expect((await follow()).statusCode).toBe(400);
    await completed('subj-sk', first.requestId);
    expect((await follow(first.statusKey)).json()).toMatchObject({ status: 'completed' });
  });
});
