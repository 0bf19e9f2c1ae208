// Backups, kept-by-law purges and business shutdown against a real participant service (the kit-built
// fixture in fixtures/participant-app.ts, standing in for identity) with its own database on the same
// broker: what it erases, isolates and purges is checked in its database directly.
import { NOTICE_REQUIRED_ELEMENTS } from '@pipp/contracts';
import { waitFor, withMongo } from '@pipp/testing';
import { loadConfig } from '@pipp/service-kit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildParticipantApp, ParticipantConfigSchema, type Person } from './fixtures/participant-app.js';
import { events, Harness, type RetentionApp } from './helpers.js';

let h: Harness;
let env: Record<string, string>;
let penv: Record<string, string>;
let app: RetentionApp;
let participant: Awaited<ReturnType<typeof buildParticipantApp>>;
let consent: Awaited<ReturnType<Harness['consent']>>;

beforeAll(async () => {
  h = await Harness.start();
  env = h.env({ ERASURE_PARTICIPANTS: 'identity,retention' });
  penv = h.sibling(env, 'identity', { PARTICIPANT_NAME: 'identity' });
  // The real consent service: a shutdown's function is checked against its catalogue.
  consent = await h.consent(env);
  env.CONSENT_URL = consent.url;
  app = await h.retention(env);
  participant = await buildParticipantApp(loadConfig(ParticipantConfigSchema, penv) as never);
  await participant.ready();
  h.track(participant);
});
afterAll(() => h?.close());

const person = (id: string): Person => ({
  _id: id, phone: `+861380013${id.length.toString().padStart(4, '0')}`, name: `Name of ${id}`, email: `${id}@example.com`, note: 'likes tea',
  transactions: [{ id: `${id}-t1`, amountMinor: 1299, memo: 'order' }], erasedBy: [], erasures: 0,
});
const erase = async (subjectId: string) => {
  const res = await app.inject({ method: 'POST', url: `/v1/retention/subjects/${subjectId}/erasure-requests`, headers: h.auth(subjectId), payload: { scope: { kind: 'account' } } });
  expect(res.statusCode).toBe(201);
  const id = res.json().requestId as string;
  await waitFor(async () => (await app.store.requests.findById(id).lean())?.status === 'completed', { what: `erasure ${id}`, timeoutMs: 30_000 });
  return id;
};
const dpo = () => h.auth('dpo-1', 'dpo');
const op = () => h.auth('op-1', 'operator');

describe('backups (policy 4.2-backups)', () => {
  // Runs first: every generation recorded earlier may hold any subject erased after it was taken.
  it('re-applies nothing from a backup taken after the erasure, refuses expired ones, and lifts suppressions once no backup may hold the subject', async () => {
    const people = participant.models.people;
    await people.create(person('subj-b3'));
    const soon = new Date(Date.now() + 6000);
    const early = (await app.inject({ method: 'POST', url: '/v1/retention/admin/backups', headers: op(), payload: { service: 'identity', takenAt: new Date().toISOString(), expiresAt: soon.toISOString(), location: 'CN' } })).json();
    const requestId = await erase('subj-b3');
    await waitFor(async () => (await app.store.suppressions.findById(requestId).lean())?.completedAt, { what: 'the completion on the suppression list' });
    const later = (await app.inject({ method: 'POST', url: '/v1/retention/admin/backups', headers: op(), payload: { service: 'identity', takenAt: new Date(Date.now() + 10).toISOString(), location: 'CN' } })).json();
    await new Promise((r) => setTimeout(r, 20));
    const r = await app.inject({ method: 'POST', url: `/v1/retention/admin/backups/${later.generationId}/restores`, headers: op() });
    expect(r.json()).toMatchObject({ status: 'clean', planned: 0 });

    // While the early generation lives, the subject stays suppressed; afterwards it is lifted.
    expect((await app.store.suppressions.findById(requestId).lean())!.status).toBe('active');
    await waitFor(async () => (await app.store.suppressions.findById(requestId).lean())?.status === 'lifted', { what: 'the suppression to lift', timeoutMs: 20_000 });
    const expired = await app.inject({ method: 'POST', url: `/v1/retention/admin/backups/${early.generationId}/restores`, headers: op() });
    expect(expired.statusCode).toBe(409);
    expect(expired.json()).toMatchObject({ code: 'PIPP_BACKUP_EXPIRED', clause: '4.2-backups' });
    const list = (await app.inject({ url: '/v1/retention/admin/suppressions?subjectId=subj-b3', headers: op() })).json();
    expect(list.items).toEqual([expect.objectContaining({ requestId, status: 'lifted' })]);
  });

  it('restores an older copy of a service\'s database without bringing an erased subject back', async () => {
    const people = participant.models.people;
    await people.create([person('subj-b1'), person('subj-b2')]);

    // The nightly backup: a copy of the participant's documents, taken with the driver, and recorded.
    const backupDb = `${penv.MONGO_DB!.slice(0, 50)}_bk`;
    h.databases.push(backupDb);
    await withMongo(async (c) => {
      const docs = await c.db(penv.MONGO_DB!).collection('people').find({}).toArray();
      await c.db(backupDb).collection('people').insertMany(docs);
    });
    const gen = await app.inject({ method: 'POST', url: '/v1/retention/admin/backups', headers: op(), payload: { service: 'identity', takenAt: new Date().toISOString(), location: 'CN', reference: 'snap-001' } });
    expect(gen.statusCode).toBe(201);
    const generationId = gen.json().generationId as string;

    const requestId = await erase('subj-b1');
    const erased = await people.findById('subj-b1').lean();
    expect(erased).toMatchObject({ erasedBy: [requestId], erasures: 1 });
    expect(erased!.phone ?? erased!.name ?? erased!.email).toBeUndefined();
    const view = (await app.inject({ url: `/v1/retention/subjects/subj-b1/erasure-requests/${requestId}`, headers: h.auth('subj-b1') })).json();
    expect(Date.parse(view.backupsIsolatedUntil)).toBe(Date.parse(gen.json().expiresAt));

    // Disaster: the older copy is restored; the erased subject is physically back ...
    await withMongo(async (c) => {
      await c.db(penv.MONGO_DB!).collection('people').deleteMany({});
      await c.db(penv.MONGO_DB!).collection('people').insertMany(await c.db(backupDb).collection('people').find({}).toArray());
    });
    expect((await people.findById('subj-b1').lean())!.phone).toBeDefined();
    // ... and the restore re-applies the erasure before the data is used.
    const restore = await app.inject({ method: 'POST', url: `/v1/retention/admin/backups/${generationId}/restores`, headers: op() });
    expect(restore.statusCode).toBe(202);
    // The answer reads the restore back: a participant quick enough has re-applied it already.
    expect(restore.json()).toMatchObject({ status: expect.stringMatching(/^(reapplying|clean)$/), planned: 1, service: 'identity' });
    const restoreId = restore.json().restoreId as string;
    const clean = await waitFor(async () => {
      const r = (await app.inject({ url: `/v1/retention/admin/restores/${restoreId}`, headers: op() })).json();
      return r.status === 'clean' ? r : null;
    }, { what: 'the restore to be clean', timeoutMs: 30_000 });
    expect(clean).toMatchObject({ planned: 1, open: 0 });

    const back = await people.findById('subj-b1').lean();
    expect(back!.phone ?? back!.name ?? back!.email ?? back!.note).toBeUndefined();
    expect(back!.erasures).toBe(1); // the restored copy predates the first erasure: applied once more, once
    expect((await people.findById('subj-b2').lean())!.phone).toBeDefined();
    // The re-applied erasure went to the restored service only, and is visible as such.
    const reapplied = await app.store.requests.findOne({ restoreId }).lean();
    expect(reapplied).toMatchObject({ kind: 'restore', subjectId: 'subj-b1', reference: requestId, status: 'completed' });
    expect(Object.keys(reapplied!.participants)).toEqual(['identity']);
  });
});

describe('backups isolated until, in a request\'s view', () => {
  it('is known as soon as the request completed, before the suppression entry records the completion', async () => {
    // The request's completion is written first, the suppression entry's copy of it just after: a view
    // read in between must already say until when backups stay isolated.
    const gen = await app.inject({ method: 'POST', url: '/v1/retention/admin/backups', headers: op(), payload: { service: 'identity', takenAt: new Date(Date.now() - 60_000).toISOString(), location: 'CN', reference: 'snap-view' } });
    expect(gen.statusCode).toBe(201);
    await app.store.suppressions.create({ _id: 'er-view-1', subjectId: 'subj-view', scope: { kind: 'account' }, ground: '4.1', requestedAt: new Date(Date.now() - 30_000), completedAt: null, status: 'active' });
    const until = await app.backups.suppressedUntil({ _id: 'er-view-1', completedAt: new Date() });
    expect(until?.getTime()).toBeGreaterThanOrEqual(Date.parse(gen.json().expiresAt));
    expect(await app.backups.suppressedUntil({ _id: 'er-view-1' })).toBeNull(); // not completed: nothing to say yet
  });
});

describe('kept by law (policy 4.2, 5.1)', () => {
  it('isolates what the law keeps with its basis and purge date, and purges it through the saga when the date comes', async () => {
    const people = participant.models.people;
    await people.create(person('subj-k1'));
    // The DPO shortens the statutory period so that the purge date comes during the test.
    const cur = (await app.inject({ url: '/v1/retention/admin/retention-policies/transaction-record', headers: op() })).json();
    const { policyId: _p, version, updatedAt: _u, updatedBy: _b, category: _c, ...rest } = cur;
    expect((await app.inject({ method: 'PUT', url: '/v1/retention/admin/retention-policies/transaction-record', headers: dpo(), payload: { ...rest, expectedVersion: version, periodDays: 0 } })).statusCode).toBe(200);

    const requestId = await erase('subj-k1');
    const done = await app.store.requests.findById(requestId).lean();
    expect(done!.participants.identity).toMatchObject({ counts: { kept: 1 }, kept: [expect.objectContaining({ category: 'transaction-record', legalBasis: 'legal-obligation' })] });
    // Isolated at the participant, out of the working data.
    expect((await people.findById('subj-k1').lean())!.transactions).toBeUndefined();
    // ... then purged: a purge request narrowed to the holder completes and the isolated copy is gone.
    const purged = await waitFor(async () => {
      const k = await app.store.kept.findOne({ requestId, participant: 'identity' }).lean();
      return k?.state === 'purged' ? k : null;
    }, { what: 'the kept record to be purged', timeoutMs: 30_000 });
    expect(await participant.models.isolated.countDocuments({ subjectId: 'subj-k1' })).toBe(0);
    const purge = await app.store.requests.findById(purged.purgeRequestId!).lean();
    expect(purge).toMatchObject({ kind: 'purge', ground: '5.1', origin: 'expiry-sweep', purgeIsolated: true, status: 'completed', scope: { kind: 'categories', categories: ['transaction-record'] } });
    expect(Object.keys(purge!.participants)).toEqual(['identity']);
    const ledger = (await app.inject({ url: '/v1/retention/subjects/subj-k1/erasure-requests', headers: h.auth('subj-k1') })).json();
    expect(ledger.items.map((i: { kind: string }) => i.kind).sort()).toEqual(['erasure', 'purge']);
  });
});

describe('business shutdown (policy 2.4.2(5))', () => {
  it('stops collection at once, notifies the subjects, and erases the function\'s data through the saga', async () => {
    // The DPO adds the function to the consent catalogue: an additional one, on activity logs, which the
    // personalization function also processes.
    const fn = await consent.app.inject({ method: 'PUT', url: '/v1/consent/admin/functions/photo-prints', headers: dpo(), payload: { title: 'Photo prints', kind: 'additional', purposes: ['personalization'], categories: ['activity-log'], why: 'prints of your photos, suggested from what you viewed' } });
    expect(fn.statusCode, fn.body).toBe(201);
    // Only a function of the catalogue, and only what it collects (a breaker helper shut down a made-up
    // function over activity logs, and every subject's activity went).
    const shut = (payload: Record<string, unknown>) => app.inject({ method: 'POST', url: '/v1/retention/admin/shutdowns', headers: op(), payload: { title: 'x', action: 'erase', ...payload } });
    expect((await shut({ functionId: 'no-such-function', categories: ['activity-log'] })).json()).toMatchObject({ code: 'PIPP_FUNCTION_UNKNOWN', clause: '2.4.2(5)' });
    expect((await shut({ functionId: 'photo-prints', categories: ['transaction-record'] })).json()).toMatchObject({ code: 'PIPP_SHUTDOWN_INVALID', message: /photo-prints does not collect transaction-record/ });
    // 10 000 affected subjects fit the body limit (a breaker helper got 413 from about 6 700).
    const many = Array.from({ length: 10_000 }, (_, i) => `sub_${String(i).padStart(32, '0')}`);
    expect((await shut({ functionId: 'no-such-function', affectedSubjects: many })).json()).toMatchObject({ code: 'PIPP_FUNCTION_UNKNOWN' });
    expect(await app.store.shutdowns.countDocuments({})).toBe(0);

    const collect = (id: string, subjectId: string) => participant.inject({ method: 'POST', url: '/functions/photo-prints/data', payload: { id, subjectId, payload: 'print order' } });
    expect((await collect('fd-1', 'subj-s1')).statusCode).toBe(201);
    expect((await collect('fd-2', 'subj-s2')).statusCode).toBe(201);
    await participant.models.people.create(person('subj-s1'));

    const res = await app.inject({ method: 'POST', url: '/v1/retention/admin/shutdowns', headers: op(), payload: { functionId: 'photo-prints', title: 'Photo prints', action: 'erase', affectedSubjects: ['subj-s1', 'subj-s2'] } });
    expect(res.statusCode).toBe(201);
    const sd = res.json();
    // Answered at once; the sweep starts in the background. Activity logs stay for personalization: the
    // sweep erases only what a participant knows was collected for the function, and no category is
    // erased per subject (a breaker helper saw a notice promise an erasure that did not happen).
    expect(sd).toMatchObject({
      status: 'collection-stopped', notice: { mode: 'individual' }, affectedSubjects: 2, erasureRequestsOpened: 0,
      categories: ['activity-log'], erasedCategories: [], keptCategories: [{ category: 'activity-log', usedBy: ['personalization'] }],
    });

    const [shutdown] = await events(env, 'privacy.function.shutdown', (e) => e.length >= 1);
    expect(shutdown!.payload).toMatchObject({ shutdownId: sd.shutdownId, functionId: 'photo-prints', action: 'erase', categories: ['activity-log'] });
    const notices = await events(env, 'privacy.notification.requested', (e) => e.some((x) => x.payload.kind === 'business-shutdown'));
    const notice = notices.find((x) => x.payload.kind === 'business-shutdown')!.payload;
    expect(notice).toMatchObject({ audience: { subjectIds: ['subj-s1', 'subj-s2'] }, clause: '2.4.2(5)', body: expect.stringMatching(/Photo prints stops operating.*What other services still use \(activity-log\) stays for them/) });
    // Every element incident requires of this kind, or it refuses the notice (found dead-lettered).
    expect(NOTICE_REQUIRED_ELEMENTS['business-shutdown'].filter((e) => !notice.elements?.[e])).toEqual([]);

    // Collection for it is refused with a clear error citing the clause.
    const refused = await waitFor(async () => { const r = await collect('fd-3', 'subj-s3'); return r.statusCode === 410 ? r : null; }, { what: 'collection to be refused' });
    expect(refused.json()).toMatchObject({ code: 'PIPP_FUNCTION_SHUT_DOWN', clause: '2.4.2(5)' });

    const completed = await waitFor(async () => {
      const v = (await app.inject({ url: `/v1/retention/admin/shutdowns/${sd.shutdownId}`, headers: op() })).json();
      return v.status === 'completed' ? v : null;
    }, { what: 'the shutdown to complete', timeoutMs: 30_000 });
    expect(completed).toMatchObject({ sweepStatus: 'completed', openRequests: 0, erasureRequestsOpened: 0 });
    expect(await participant.models.functionData.countDocuments({ functionId: 'photo-prints' })).toBe(0);
    const sweep = (await app.inject({ url: `/v1/retention/admin/sweeps/${sd.sweepId}`, headers: op() })).json();
    expect(sweep).toMatchObject({ kind: 'shutdown', functionId: 'photo-prints', status: 'completed', totals: { erased: 2 } });
    expect(await app.store.requests.countDocuments({ reference: sd.shutdownId })).toBe(0);

    const again = await app.inject({ method: 'POST', url: '/v1/retention/admin/shutdowns', headers: op(), payload: { functionId: 'photo-prints', title: 'x', action: 'erase' } });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ code: 'PIPP_FUNCTION_ALREADY_SHUT_DOWN', clause: '2.4.2(5)' });
    const pub = (await app.inject({ url: '/v1/retention/public/shutdowns' })).json();
    expect(pub.items).toEqual([expect.objectContaining({ functionId: 'photo-prints', title: 'Photo prints' })]);
  });

  it('erases a category two functions shared when both close together, keeping it only while the other is open', async () => {
    for (const id of ['reports-a', 'reports-b']) {
      const put = await consent.app.inject({ method: 'PUT', url: `/v1/consent/admin/functions/${id}`, headers: dpo(), payload: { title: id, kind: 'additional', purposes: ['personalization', 'sharing'], categories: ['support-report'], why: 'support reports, shared with a partner' } });
      expect(put.statusCode, put.body).toBe(201);
    }
    const [a, b] = await Promise.all(['reports-a', 'reports-b'].map((functionId) => app.inject({ method: 'POST', url: '/v1/retention/admin/shutdowns', headers: op(), payload: { functionId, title: functionId, action: 'erase' } })));
    const scopes = [a!.json(), b!.json()].map((s) => ({ erased: s.erasedCategories, kept: s.keptCategories }));
    // The first kept it for the other, still open then; the second, closing last, erases it.
    expect(scopes).toContainEqual({ erased: [], kept: [{ category: 'support-report', usedBy: [expect.stringMatching(/^reports-[ab]$/)] }] });
    expect(scopes).toContainEqual({ erased: ['support-report'], kept: [] });
  });

  it('erases the data of a shutdown announced ahead from its effective time on, not at once; at most a year ahead', async () => {
    const put = await consent.app.inject({ method: 'PUT', url: '/v1/consent/admin/functions/photo-books', headers: dpo(), payload: { title: 'Photo books', kind: 'additional', purposes: ['personalization'], categories: ['activity-log'], why: 'photo books from what you viewed' } });
    expect(put.statusCode, put.body).toBe(201);
    const shut = (effectiveAt: Date) => app.inject({ method: 'POST', url: '/v1/retention/admin/shutdowns', headers: op(), payload: { functionId: 'photo-books', title: 'Photo books', action: 'erase', effectiveAt: effectiveAt.toISOString() } });
    expect((await shut(new Date('9999-12-31T00:00:00Z'))).json()).toMatchObject({ statusCode: 400, code: 'PIPP_BAD_TIME' });
    const effectiveAt = new Date(Date.now() + 7 * 86_400_000);
    const res = await shut(effectiveAt);
    expect(res.statusCode, res.body).toBe(201);
    const sd = res.json();
    // It still collects until then: no sweep yet, whatever the scheduler does meanwhile.
    await app.shutdowns.tick(new Date());
    await new Promise((r) => setTimeout(r, 500));
    expect(await app.store.sweeps.findById(sd.sweepId).lean()).toBeNull();
    // From its effective time on, the erasure runs.
    await app.shutdowns.tick(new Date(effectiveAt.getTime() + 1000));
    await waitFor(() => app.store.sweeps.findById(sd.sweepId).lean(), { what: 'the shutdown\'s sweep to start' });
  });

  it('opens the erasures of many affected subjects in batches, going on from the progress it stored', { timeout: 90_000 }, async () => {
    // A shutdown a restart stopped after its first batch of 100 erasure requests: the next run opens the other 20.
    const affected = Array.from({ length: 120 }, (_, i) => `subj-many-${i}`);
    await app.store.shutdowns.create({
      _id: 'sd-resumed', functionId: 'resumed-fn', title: 'Resumed', effectiveAt: new Date(), action: 'erase', categories: ['activity-log'],
      erasedCategories: ['activity-log'], keptCategories: [], notice: { mode: 'individual', notificationIds: [] }, affectedSubjects: affected,
      erasuresOpened: 100, status: 'collection-stopped', sweepId: 'sw-sd-resumed', createdAt: new Date(), createdBy: { role: 'operator', actorId: 'op-1' },
    });
    await app.shutdowns.tick();
    await waitFor(async () => (await app.store.shutdowns.findById('sd-resumed').lean())?.status !== 'collection-stopped', { what: 'the erasures to open', timeoutMs: 60_000 });
    const opened = await app.store.requests.find({ reference: 'sd-resumed' }).lean();
    expect(opened.map((r) => r.subjectId).sort()).toEqual(affected.slice(100).sort());
    expect(opened[0]).toMatchObject({ origin: 'business-shutdown', ground: '2.4.2(5)', scope: { kind: 'categories', categories: ['activity-log'] } });
    expect((await app.store.shutdowns.findById('sd-resumed').lean())!.erasuresOpened).toBe(120);

    // The open requests are counted by the background run and stored; the view reads that count (it
    // counted the whole request collection on every view, and under a large shutdown views timed out).
    await app.shutdowns.tick();
    const counted = await waitFor(async () => {
      const d = await app.store.shutdowns.findById('sd-resumed').lean();
      return d?.openRequestsCountedAt ? d : null;
    }, { what: 'the open requests to be counted' });
    expect(counted.openRequests).toBeGreaterThanOrEqual(0);
    expect(counted.openRequests).toBeLessThanOrEqual(20);
    const counts = vi.spyOn(app.store.requests, 'countDocuments');
    try {
      const view = (await app.inject({ url: '/v1/retention/admin/shutdowns/sd-resumed', headers: op() })).json();
      const now = await app.store.shutdowns.findById('sd-resumed').lean();
      expect(view).toMatchObject({ openRequests: now!.openRequests, openRequestsCountedAt: now!.openRequestsCountedAt!.toISOString() });
      expect(counts).not.toHaveBeenCalled();
    } finally {
      counts.mockRestore();
    }
  });
});
