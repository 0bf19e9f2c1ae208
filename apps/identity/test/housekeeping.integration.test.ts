// Identity's housekeeping (policy 5.1: PI kept only as long as necessary): spent codes, counters,
// challenges, the SMS sink, ended sessions, pending phone changes and lifted legal holds go at their
// `purgeAt`; device, sign-in, activity and audit records at their `retentionUntil`. FerretDB has no
// TTL indexes, so `purgeExpired` is what enforces these dates; here against the real database.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { purgeExpired } from '../src/plugins/housekeeping.js';
import { identityEnv, startIdentity, stopIdentity, type IdentityApp } from './helpers.js';

let env: Record<string, string>;
let app: IdentityApp;
beforeAll(async () => {
  env = identityEnv();
  app = await startIdentity(env);
});
afterAll(async () => { await stopIdentity(app, env); });

it('deletes each kind of record once its date has passed, and nothing before', async () => {
  const m = app.models;
  // A year ahead: the purge the service itself runs at start (real time) must not touch these.
  const now = new Date(Date.now() + 365 * 86_400_000);
  const before = new Date(now.getTime() - 1000);
  const after = new Date(now.getTime() + 1000);
  const byPurge = { otpCodes: m.otpCodes, counters: m.counters, smsSink: m.smsSink, challenges: m.challenges, sessions: m.sessions, phoneChanges: m.phoneChanges, legalHolds: m.legalHolds };
  const byRetention = { devices: m.devices, signIns: m.signIns, activity: m.activity, audit: m.audit };
  // Raw documents (only the fields the purge reads): one past its date, one not yet.
  for (const [name, model] of Object.entries(byPurge)) {
    await model.collection.insertMany([{ _id: `${name}-old`, purgeAt: before }, { _id: `${name}-new`, purgeAt: after }] as never[]);
  }
  for (const [name, model] of Object.entries(byRetention)) {
    await model.collection.insertMany([{ _id: `${name}-old`, retentionUntil: before }, { _id: `${name}-new`, retentionUntil: after }] as never[]);
  }

  expect(await purgeExpired(app, now)).toBe(Object.keys(byPurge).length + Object.keys(byRetention).length);
  for (const [name, model] of Object.entries({ ...byPurge, ...byRetention })) {
    const left = (await model.collection.find({ _id: { $in: [`${name}-old`, `${name}-new`] } } as never).toArray()).map((d) => d._id);
    expect(left, name).toEqual([`${name}-new`]);
  }
  // A second pass finds nothing more.
  expect(await purgeExpired(app, now)).toBe(0);
});
