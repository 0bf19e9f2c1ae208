// Retention sweeps (policy 5.1, 5.2, 4.2.5) applied by the data-sharing service on the real broker and
// database: batches, erase or anonymize, idempotent redelivery, participants, shutdown sweeps.
import { createEvent, type EventPayload } from '@pipp/contracts';
import { TestAuthority, collectMessages, produceRaw, uniqueId } from '@pipp/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Databases, dsEnv, startDs, type DsApp } from './helpers.js';

let authority: TestAuthority;
let app: DsApp;
let env: Record<string, string>;
const dbs = new Databases();

beforeAll(async () => {
  authority = await TestAuthority.start();
  env = dbs.add(dsEnv(authority));
  app = await startDs(authority, env);
});
afterAll(async () => {
  await app?.close();
  await authority.close();
  await dbs.dropAll();
});

const DAY = 86_400_000;
async function share(subjectId: string, ageDays: number, functionId?: string) {
  const id = `shr_${uniqueId()}`;
  await app.models.shares.create({
    _id: id, subjectId, recipientId: 'rcp_x', recipientName: 'X', country: 'CN', purpose: 'sharing', categories: ['profile'],
    basis: { kind: 'consent', consentRecordId: 'c' }, clause: '3.1.2', crossBorder: false, requestedBy: { role: 'service', actorId: 'identity' },
    sharedAt: new Date(Date.now() - ageDays * DAY), held: null, ...(functionId ? { functionId } : {}),
  });
  return id;
}

type Payload = EventPayload<'privacy.retention.sweep-requested'>;
async function sweep(payload: Partial<Payload> & { sweepId: string; rules: Payload['rules'] }, key?: string) {
  const e = createEvent('privacy.retention.sweep-requested', { source: 'retention', payload: { asOf: new Date().toISOString(), batchSize: 2, ...payload } });
  await produceRaw(`${env.KAFKA_TOPIC_PREFIX}privacy.retention.sweep-requested`, [{ key: key ?? e.id, value: JSON.stringify(e) }]);
}
type Reply = EventPayload<'privacy.retention.sweep-replied'>;
const replies = async (sweepId: string, until: (r: Reply[]) => boolean) =>
  (await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.retention.sweep-replied`, (m) => until(m.map((x) => JSON.parse(x.value!).payload as Reply).filter((p) => p.sweepId === sweepId)), 90_000))
    .map((x) => JSON.parse(x.value!).payload as Reply).filter((p) => p.sweepId === sweepId);

it('erases sharing records past their period in batches, replies progress and the result, and replies the same to a redelivery', async () => {
  const subject = uniqueId('subj');
  const old = await Promise.all([share(subject, 400), share(subject, 500), share(subject, 600)]);
  const fresh = await share(subject, 10);
  const sweepId = uniqueId('sw');
  await sweep({ sweepId, rules: [{ category: 'sharing-record', periodDays: 365, action: 'erase', criterion: '5.2.1' }, { category: 'sharing-record', periodDays: 1, action: 'erase', criterion: '5.2.1', service: 'identity' }] });
  // Replies carry no data subject, so they may sit on different partitions: read until all are in.
  const got = await replies(sweepId, (r) => r.some((p) => p.status === 'completed') && r.filter((p) => p.status === 'in-progress').length >= 2);
  expect(got.filter((p) => p.status === 'in-progress').map((p) => p.batches).sort()).toEqual([1, 2]);
  expect(got.find((p) => p.status === 'completed')).toMatchObject({ participant: 'data-sharing', counts: { erased: 3, anonymized: 0, kept: 0 }, batches: 2 });
  for (const id of old) expect(await app.models.shares.exists({ _id: id })).toBeNull();
  expect(await app.models.shares.exists({ _id: fresh })).toBeTruthy();

  await sweep({ sweepId, rules: [{ category: 'sharing-record', periodDays: 365, action: 'erase', criterion: '5.2.1' }], attempt: 2 });
  const again = await replies(sweepId, (r) => r.some((p) => p.attempt === 2));
  expect(again.find((p) => p.attempt === 2)).toMatchObject({ status: 'completed', counts: { erased: 3 } });
  expect(await app.models.shares.exists({ _id: fresh })).toBeTruthy();
});

it('anonymizes when the rule says so: the record stays for statistics, cut from the subject', async () => {
  const subject = uniqueId('subj');
  const id = await share(subject, 800);
  const sweepId = uniqueId('sw');
  await sweep({ sweepId, rules: [{ category: 'sharing-record', periodDays: 365, action: 'anonymize', criterion: '5.2.3' }] });
  await replies(sweepId, (r) => r.some((p) => p.status === 'completed'));
  const doc = await app.models.shares.findById(id).lean();
  expect(doc).toMatchObject({ subjectId: '-', basis: null, recipientId: 'rcp_x', categories: ['profile'] });
  expect(await app.models.shares.countDocuments({ subjectId: subject })).toBe(0);
});

it('on a shutdown sweep takes everything collected for that function, whatever its age; ignores sweeps for other participants', async () => {
  const subject = uniqueId('subj');
  const forFn = await share(subject, 1, 'gift-cards');
  const other = await share(subject, 1);
  const skipped = uniqueId('sw');
  // Same key: the skipped sweep (which would erase everything) is handled before the shutdown sweep.
  await sweep({ sweepId: skipped, participants: ['identity'], rules: [{ category: 'sharing-record', periodDays: 0, action: 'erase', criterion: '5.2.1' }] }, subject);
  const sweepId = uniqueId('sw');
  await sweep({ sweepId, shutdown: { shutdownId: 'sd-1', functionId: 'gift-cards' }, rules: [{ category: 'sharing-record', periodDays: 0, action: 'erase', criterion: '5.2.1' }] }, subject);
  const got = await replies(sweepId, (r) => r.some((p) => p.status === 'completed'));
  expect(got.find((p) => p.status === 'completed')!.counts.erased).toBe(1);
  expect(await app.models.shares.exists({ _id: forFn })).toBeNull();
  expect(await app.models.shares.exists({ _id: other })).toBeTruthy();
  expect(await app.models.sweeps.exists({ _id: skipped })).toBeNull();
});
