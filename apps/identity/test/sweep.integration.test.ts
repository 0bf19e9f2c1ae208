// Retention sweeps (policy 5.1, 5.2, 4.2.5) applied by identity on the real broker and database: what
// is past its period is erased or anonymized in batches, the rest stays, progress and the result are
// replied through the outbox, and a redelivered sweep is answered with the same counts.
import { createEvent, type EventPayload } from '@pipp/contracts';
import { collectMessages, produceRaw, uniqueId, waitFor } from '@pipp/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { purgeExpired } from '../src/plugins/housekeeping.js';
import { identityEnv, register, startIdentity, stopIdentity, type IdentityApp } from './helpers.js';

let app: IdentityApp;
let env: Record<string, string>;
beforeAll(async () => {
  env = identityEnv();
  app = await startIdentity(env);
});
afterAll(() => stopIdentity(app, env));

const DAY = 86_400_000;
type Payload = EventPayload<'privacy.retention.sweep-requested'>;
type Reply = EventPayload<'privacy.retention.sweep-replied'>;

async function sweep(payload: Partial<Payload> & { sweepId: string; rules: Payload['rules'] }) {
  const e = createEvent('privacy.retention.sweep-requested', { source: 'retention', payload: { asOf: new Date().toISOString(), batchSize: 2, ...payload } });
  await produceRaw(`${env.KAFKA_TOPIC_PREFIX}privacy.retention.sweep-requested`, [{ key: e.id, value: JSON.stringify(e) }]);
}
const replies = async (sweepId: string, until: (r: Reply[]) => boolean) =>
  (await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.retention.sweep-replied`, (m) => until(m.map((x) => JSON.parse(x.value!).payload as Reply).filter((p) => p.sweepId === sweepId)), 60_000))
    .map((x) => JSON.parse(x.value!).payload as Reply).filter((p) => p.sweepId === sweepId);

it('erases activity past its period in batches, keeps the rest, and answers a redelivery with the same counts', async () => {
  const subjectId = uniqueId('subj');
  const entry = (ageDays: number) => ({ _id: uniqueId('act'), subjectId, kind: 'browse', target: '/tea', at: new Date(Date.now() - ageDays * DAY), basis: { kind: 'consent', consentRecordId: 'c1' } });
  const old = [entry(400), entry(500), entry(600)];
  const fresh = entry(10);
  await app.models.activity.insertMany([...old, fresh]);
  const sweepId = uniqueId('sw');
  await sweep({ sweepId, rules: [{ category: 'activity-log', periodDays: 365, action: 'erase', criterion: '5.2.1' }, { category: 'sharing-record', periodDays: 1, action: 'erase', criterion: '5.2.1' }] });
  const got = await replies(sweepId, (r) => r.some((p) => p.status === 'completed'));
  expect(got.filter((p) => p.status === 'in-progress').length).toBeGreaterThanOrEqual(2);
  expect(got.find((p) => p.status === 'completed')).toMatchObject({ participant: 'identity', counts: { erased: 3, anonymized: 0, kept: 0 }, batches: 2 });
  expect(await app.models.activity.countDocuments({ _id: { $in: old.map((o) => o._id) } })).toBe(0);
  expect(await app.models.activity.exists({ _id: fresh._id })).toBeTruthy();

  await sweep({ sweepId, rules: [{ category: 'activity-log', periodDays: 365, action: 'erase', criterion: '5.2.1' }], attempt: 2 });
  const again = await replies(sweepId, (r) => r.filter((p) => p.status === 'completed').length >= 2);
  expect(again.filter((p) => p.status === 'completed').map((p) => p.counts.erased)).toEqual([3, 3]);
  expect(await app.models.activity.exists({ _id: fresh._id })).toBeTruthy();
});

it('leaves what a legal hold covers past its period (policy 4.1), for the held subject and category only', async () => {
  // A breaker helper saw a sweep delete device records that a blocking hold had just kept from the
  // subject's own erasure request.
  const held = uniqueId('subj');
  const other = uniqueId('subj');
  const old = (subjectId: string) => ({ _id: uniqueId('dev'), subjectId, kind: 'subject', deviceKey: uniqueId('k'), userAgent: 'ua', ipPrefix: '203.0.113.0/24', network: 'n', firstSeenAt: new Date(Date.now() - 900 * DAY), lastSeenAt: new Date(Date.now() - 800 * DAY) });
  const [kept, gone] = [old(held), old(other)];
  await app.models.devices.insertMany([kept, gone]);
  const act = { _id: uniqueId('act'), subjectId: held, kind: 'browse', target: '/tea', at: new Date(Date.now() - 800 * DAY), basis: { kind: 'consent', consentRecordId: 'c1' } };
  await app.models.activity.create(act);
  const sweepId = uniqueId('sw');
  await sweep({
    sweepId, heldSubjects: [{ subjectId: held, categories: ['device-info'] }],
    rules: [{ category: 'device-info', periodDays: 365, action: 'erase', criterion: '5.2.2' }, { category: 'activity-log', periodDays: 365, action: 'erase', criterion: '5.2.1' }],
  });
  await replies(sweepId, (r) => r.some((p) => p.status === 'completed'));
  expect(await app.models.devices.exists({ _id: kept._id })).toBeTruthy();
  expect(await app.models.devices.exists({ _id: gone._id })).toBeNull();
  // The hold names device information only: the held subject's old activity goes.
  expect(await app.models.activity.exists({ _id: act._id })).toBeNull();
});

it('anonymizes sign-in records when the rule says so: time, outcome and score stay, the subject and device go', async () => {
  const subjectId = uniqueId('subj');
  const id = uniqueId('si');
  await app.models.signIns.create({ _id: id, subjectId, at: new Date(Date.now() - 800 * DAY), outcome: 'succeeded', method: 'password', score: 10, factors: [], deviceId: 'dev-1', ipPrefix: '203.0.113.0/24', purpose: 'security', legalBasis: 'consent' });
  const sweepId = uniqueId('sw');
  await sweep({ sweepId, rules: [{ category: 'device-info', periodDays: 365, action: 'anonymize', criterion: '5.2.2' }] });
  await replies(sweepId, (r) => r.some((p) => p.status === 'completed'));
  const doc = await app.models.signIns.findById(id).lean();
  expect(doc).toMatchObject({ subjectId: 'anonymous', outcome: 'succeeded', score: 10 });
  expect(doc).not.toHaveProperty('deviceId');
  expect(doc).not.toHaveProperty('ipPrefix');
});

it('takes the period the retention service sets for what it dates: shown to the subject, applied by its sweeps instead of housekeeping', async () => {
  // The first sweep of this file said activity-log: 365 days (identity's own default is 90).
  expect(app.retentionPeriods.governed('activity-log')).toBe(true);
  const s = await register(app, env, { password: '' });
  const at = new Date(Date.now() - 100 * DAY);
  // Stamped under the 90-day default, so past its date: housekeeping no longer deletes it early.
  await app.models.activity.create({ _id: uniqueId('act'), subjectId: s.subjectId, kind: 'search', query: 'tea', at, basis: { kind: 'consent', consentRecordId: 'c1' }, retentionUntil: new Date(at.getTime() + 90 * DAY) });
  await purgeExpired(app);
  const res = await app.inject({ url: `/v1/identity/subjects/${s.subjectId}/activity`, headers: { authorization: `Bearer ${s.accessToken}` } });
  expect(res.statusCode).toBe(200);
  const [entry] = res.json().entries;
  expect(entry.retentionUntil).toBe(new Date(at.getTime() + 365 * DAY).toISOString());
  // Remembered across a restart (the periods are stored), and taken up by an instance that did not see
  // the sweep (each sweep reaches one instance of the group) at its next housekeeping pass.
  const again = await startIdentity(env);
  try {
    expect(again.retentionPeriods.until('activity-log', at).toISOString()).toBe(entry.retentionUntil);
    await app.retentionPeriods.apply({ sweepId: uniqueId('sw'), asOf: new Date().toISOString(), rules: [{ category: 'activity-log', periodDays: 500, action: 'anonymize', criterion: '5.2.2' }] });
    await purgeExpired(again);
    expect(again.retentionPeriods.until('activity-log', at).toISOString()).toBe(new Date(at.getTime() + 500 * DAY).toISOString());
  } finally {
    await again.close();
  }
});

it('takes the periods retention announces (at its start and on every change) without waiting for a sweep', async () => {
  // A fresh-clone trial saw a 90-day date on an activity entry while the DPO's policy said 180: the
  // periods came only with the first (daily) sweep.
  const e = createEvent('privacy.retention.periods-changed', {
    source: 'retention',
    payload: { asOf: new Date(Date.now() + 1000).toISOString(), rules: [{ category: 'device-info', periodDays: 222, action: 'erase', criterion: '5.2.3' }] },
  });
  await produceRaw(`${env.KAFKA_TOPIC_PREFIX}privacy.retention.periods-changed`, [{ key: 'periods', value: JSON.stringify(e) }]);
  const at = new Date();
  await waitFor(() => app.retentionPeriods.until('device-info', at).getTime() === at.getTime() + 222 * DAY, { what: 'the announced period' });
  expect(app.retentionPeriods.governed('device-info')).toBe(true);
});

it('keeps the newest periods whichever instance stored them: an older sweep applied by another instance changes nothing', async () => {
  // A breaker: instance B stored an older sweep's 180 days over A's newer 90 (B's memory was behind),
  // and the two instances dated records differently from then on.
  const now = Date.now();
  await app.retentionPeriods.apply({ sweepId: uniqueId('sw'), asOf: new Date(now + 5_000).toISOString(), rules: [{ category: 'activity-log', periodDays: 90, action: 'erase', criterion: '5.2.1' }] });
  const other = await startIdentity(env);
  try {
    await other.retentionPeriods.apply({ sweepId: uniqueId('sw'), asOf: new Date(now - 60_000).toISOString(), rules: [{ category: 'activity-log', periodDays: 180, action: 'erase', criterion: '5.2.1' }] });
    // A rule for identity wins over the general one, wherever it comes in the list.
    await other.retentionPeriods.apply({ sweepId: uniqueId('sw'), asOf: new Date(now + 10_000).toISOString(), rules: [
      { category: 'device-info', periodDays: 40, action: 'erase', criterion: '5.2.2', service: 'identity' },
      { category: 'device-info', periodDays: 400, action: 'erase', criterion: '5.2.2' },
    ] });
    const at = new Date(now);
    for (const instance of [app, other]) {
      await instance.retentionPeriods.refresh();
      expect(instance.retentionPeriods.until('activity-log', at).getTime()).toBe(now + 90 * DAY);
    }
    expect(other.retentionPeriods.until('device-info', at).getTime()).toBe(now + 40 * DAY);
  } finally {
    await other.close();
  }
});

it('leaves what a hold it was told of covers even when the sweep request names no held subjects (too many to carry)', async () => {
  const held = uniqueId('subj');
  const e = createEvent('privacy.legal-hold.changed', {
    source: 'retention', subject: held,
    payload: { holdId: uniqueId('lh'), subjectId: held, categories: [], mode: 'block', legalBasis: 'law-enforcement', evidenceRef: 'Order S', until: new Date(Date.now() + 30 * DAY).toISOString(), status: 'active' },
  });
  await produceRaw(`${env.KAFKA_TOPIC_PREFIX}privacy.legal-hold.changed`, [{ key: held, value: JSON.stringify(e) }]);
  await waitFor(() => app.legalHolds.active(held).then((h) => h.length === 1), { what: 'the hold to arrive' });
  const act = { _id: uniqueId('act'), subjectId: held, kind: 'browse', target: '/tea', at: new Date(Date.now() - 800 * DAY), basis: { kind: 'consent', consentRecordId: 'c1' } };
  await app.models.activity.create(act);
  const sweepId = uniqueId('sw');
  await sweep({ sweepId, asOf: new Date(Date.now() + 60_000).toISOString(), rules: [{ category: 'activity-log', periodDays: 365, action: 'erase', criterion: '5.2.1' }] });
  await replies(sweepId, (r) => r.some((p) => p.status === 'completed'));
  expect(await app.models.activity.exists({ _id: act._id })).toBeTruthy();
});
