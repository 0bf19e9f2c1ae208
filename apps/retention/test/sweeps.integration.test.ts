// Expiry sweeps (policy 5.1, 5.2, 4.2.5): a scheduled job publishes the retention rules; participants
// apply them in batches and report progress (log lines and the status endpoint); accounts past their
// period somewhere are erased everywhere through the saga; retention applies its own ledger's period.
import { MAX_HELD_SUBJECTS, type ErasureParticipant } from '@pipp/contracts';
import { waitFor } from '@pipp/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SimulatedParticipants } from './fixtures/simulated.js';
import { events, Harness, type RetentionApp } from './helpers.js';

let h: Harness;
let env: Record<string, string>;
let app: RetentionApp;
let sim: SimulatedParticipants;
const OTHERS: ErasureParticipant[] = ['identity', 'consent', 'data-sharing', 'incident'];
const DAY = 86_400_000;
let firstSweep: string | undefined;
const first = (sweepId: string) => (firstSweep ??= sweepId) === sweepId;

beforeAll(async () => {
  h = await Harness.start();
  env = h.env({ SWEEP_INTERVAL_MS: '3000', SWEEP_BATCH_SIZE: '2' });
  app = await h.retention(env);
  // An old, closed request past the ledger's own period (erasure-request: 1095 days), and a recent one.
  const old = new Date(Date.now() - 1200 * DAY);
  const base = { kind: 'erasure', scope: { kind: 'account' }, scopeKey: 'account', ground: '4.1', origin: 'subject', status: 'completed', legalHolds: [], deadline: old, attempt: 1, participants: {}, escalations: [], joins: [], totals: { erased: 1, anonymized: 0, kept: 0 }, nextActionAt: null, rev: 1 };
  await app.store.requests.create([
    { ...base, _id: 'er-old-1', subjectId: 'subj-old', openKey: 'closed:er-old-1', requestedBy: { role: 'subject', actorId: 'subj-old' }, createdAt: old, updatedAt: old, completedAt: old },
    { ...base, _id: 'er-old-2', subjectId: 'subj-old', openKey: 'closed:er-old-2', requestedBy: { role: 'subject', actorId: 'subj-old' }, createdAt: old, updatedAt: old, completedAt: old },
    { ...base, _id: 'er-old-3', subjectId: 'subj-old2', openKey: 'closed:er-old-3', requestedBy: { role: 'subject', actorId: 'subj-old2' }, createdAt: old, updatedAt: old, completedAt: old },
    { ...base, _id: 'er-new', subjectId: 'subj-new', openKey: 'closed:er-new', requestedBy: { role: 'subject', actorId: 'subj-new' }, createdAt: new Date(), updatedAt: new Date(), completedAt: new Date() },
  ] as never);
  await app.store.kept.create({ _id: 'er-old-1:retention:erasure-request', requestId: 'er-old-1', subjectId: 'subj-old', participant: 'retention', category: 'erasure-request', legalBasis: 'legal-obligation', purgeAt: new Date(Date.now() - DAY), reason: 'ledger', state: 'isolated', recordedAt: old });
  sim = await SimulatedParticipants.start({
    prefix: env.KAFKA_TOPIC_PREFIX!, participants: OTHERS,
    // identity reports one inactive account in the first sweep (once erased, it has nothing to report).
    sweep: (p, r) => (p === 'identity' ? { counts: { erased: 40, anonymized: 5, kept: 0 }, batches: 3, ...(first(r.sweepId) ? { expiredSubjects: ['subj-inactive'] } : {}) } : 'complete'),
  });
});
afterAll(async () => {
  await sim?.stop();
  await h?.close();
});

it('runs on schedule, tracks each participant\'s batches, and completes when all did', async () => {
  // The first scheduled sweep (later ones follow every 3 s).
  const status = await waitFor(async () => {
    const r = (await app.inject({ url: '/v1/retention/admin/sweeps', headers: h.auth('op-1', 'operator') })).json();
    return r.items?.filter((i: { kind: string }) => i.kind === 'scheduled').at(-1)?.status === 'completed' ? r : null;
  }, { what: 'the scheduled sweep to complete', timeoutMs: 40_000 });
  const sweep = status.items.filter((i: { kind: string }) => i.kind === 'scheduled').at(-1);
  expect(sweep).toMatchObject({ kind: 'scheduled', batchSize: 2, rules: 21 });
  expect(Date.parse(status.nextScheduledAt)).toBeGreaterThan(Date.parse(sweep.startedAt));
  const by = Object.fromEntries(sweep.participants.map((p: { participant: string }) => [p.participant, p]));
  expect(by.identity).toMatchObject({ state: 'completed', batches: 3, counts: { erased: 40, anonymized: 5 } });
  expect(by.consent).toMatchObject({ state: 'completed', batches: 2 });
  // Retention's own part: the closed requests past the ledger's period, in batches of 2.
  expect(by.retention).toMatchObject({ state: 'completed', counts: { erased: 3 }, batches: 2 });
  expect(await app.store.requests.countDocuments({ _id: { $in: ['er-old-1', 'er-old-2', 'er-old-3'] } })).toBe(0);
  expect(await app.store.requests.countDocuments({ _id: 'er-new' })).toBe(1);
  expect((await app.store.kept.findById('er-old-1:retention:erasure-request').lean())!.state).toBe('purged');
  expect(sweep.totals).toMatchObject({ erased: 40 + 3 * 10 + 3, anonymized: 5 + 3 * 2 });

  // The event carried every rule, each participant's progress came in batches.
  const requested = (await events(env, 'privacy.retention.sweep-requested', (e) => e.some((x) => x.payload.sweepId === sweep.sweepId))).find((x) => x.payload.sweepId === sweep.sweepId);
  expect(requested!.payload).toMatchObject({ sweepId: sweep.sweepId, batchSize: 2, attempt: 1 });
  expect(requested!.payload.rules.find((r) => r.category === 'device-info')).toMatchObject({ periodDays: 180, criterion: '5.2.3', action: 'erase' });
  const replies = await events(env, 'privacy.retention.sweep-replied', (e) => e.filter((x) => x.payload.sweepId === sweep.sweepId && x.payload.participant === 'retention').length >= 3);
  expect(replies.filter((x) => x.payload.participant === 'retention' && x.payload.sweepId === sweep.sweepId).map((x) => [x.payload.status, x.payload.batches])).toEqual([['in-progress', 1], ['in-progress', 2], ['completed', 2]]);
});

it('erases everywhere, through the saga, an account whose period ended at one participant', async () => {
  const req = await waitFor(async () => app.store.requests.findOne({ subjectId: 'subj-inactive' }).lean(), { what: 'the expiry erasure request' });
  expect(req).toMatchObject({ origin: 'expiry-sweep', ground: '4.2.5', scope: { kind: 'account' } });
  expect(Object.keys(req.participants).sort()).toEqual(['consent', 'data-sharing', 'identity', 'incident', 'retention']);
  await waitFor(async () => (await app.store.requests.findById(req._id).lean())?.status === 'completed', { what: 'the expiry erasure to complete' });
  // A later sweep naming the same subject again does not open a second request for the same sweep.
  expect(await app.store.requests.countDocuments({ subjectId: 'subj-inactive' })).toBe(1);
});

it('starts a sweep on demand for staff only, telling participants what legal holds cover (policy 4.1)', async () => {
  expect((await app.inject({ method: 'POST', url: '/v1/retention/admin/sweeps', headers: h.auth('subj-1') })).statusCode).toBe(403);
  const hold = await app.inject({ method: 'POST', url: '/v1/retention/admin/legal-holds', headers: h.auth('dpo-1', 'dpo'), payload: { subjectId: 'subj-held', categories: ['device-info'], mode: 'block', legalBasis: 'legal-obligation', evidenceRef: 'Order 7', until: new Date(Date.now() + 30 * 86_400_000).toISOString() } });
  expect(hold.statusCode).toBe(201);
  const res = await app.inject({ method: 'POST', url: '/v1/retention/admin/sweeps', headers: h.auth('op-1', 'operator') });
  expect(res.statusCode).toBe(202);
  expect(res.json()).toMatchObject({ kind: 'manual', status: 'running' });
  const requested = (await events(env, 'privacy.retention.sweep-requested', (e) => e.some((x) => x.payload.sweepId === res.json().sweepId))).find((x) => x.payload.sweepId === res.json().sweepId);
  expect(requested!.payload.heldSubjects).toEqual([{ subjectId: 'subj-held', categories: ['device-info'] }]);
  await waitFor(async () => (await app.inject({ url: `/v1/retention/admin/sweeps/${res.json().sweepId}`, headers: h.auth('op-1', 'operator') })).json().status === 'completed', { what: 'the manual sweep' });
  expect((await app.inject({ url: '/v1/retention/admin/sweeps/sw-nope', headers: h.auth('op-1', 'operator') })).statusCode).toBe(404);
});

it('names the held subjects in a sweep request while they fit, and leaves them to the participants\' own record of the holds beyond', async () => {
  const until = new Date(Date.now() + 30 * 86_400_000);
  const holds = Array.from({ length: MAX_HELD_SUBJECTS + 1 }, (_, i) => ({
    _id: `lh-many-${i}`, subjectId: `subj-many-${i}`, categories: ['device-info'], mode: 'block', legalBasis: 'legal-obligation', evidenceRef: 'Order M',
    until, status: 'active', createdAt: new Date(), createdBy: { role: 'dpo', actorId: 'dpo-1' },
  }));
  for (let i = 0; i < holds.length; i += 1000) await app.store.holds.collection.insertMany(holds.slice(i, i + 1000) as never[]);
  try {
    // One event could not carry them all (it failed validation: a 500, and no sweep ever again).
    const res = await app.inject({ method: 'POST', url: '/v1/retention/admin/sweeps', headers: h.auth('op-1', 'operator') });
    expect(res.statusCode).toBe(202);
    const requested = (await events(env, 'privacy.retention.sweep-requested', (e) => e.some((x) => x.payload.sweepId === res.json().sweepId))).find((x) => x.payload.sweepId === res.json().sweepId);
    expect(requested!.payload.heldSubjects).toBeUndefined();
  } finally {
    await app.store.holds.deleteMany({ _id: { $regex: '^lh-many-' } });
  }
});
