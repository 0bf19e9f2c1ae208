// Retention policies as data the DPO edits (policy 5.1, 5.2): seeded per category, versioned,
// audited, conditional on the version read; the 5.2 rules enforced; per-service overrides.
import { DATA_CATEGORY_IDS } from '@pipp/contracts';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { events, Harness, type RetentionApp } from './helpers.js';

let h: Harness;
let app: RetentionApp;
let env: Record<string, string>;
beforeAll(async () => {
  h = await Harness.start();
  env = h.env();
  app = await h.retention(env);
});
afterAll(() => h?.close());

const dpo = () => h.auth('dpo-1', 'dpo');
const op = () => h.auth('op-1', 'operator');
const put = (id: string, body: Record<string, unknown>, headers = dpo()) => app.inject({ method: 'PUT', url: `/v1/retention/admin/retention-policies/${id}`, headers, payload: body });

it('seeds one general policy per data category, readable by operators, not by subjects', async () => {
  const res = await app.inject({ url: '/v1/retention/admin/retention-policies', headers: op() });
  expect(res.statusCode).toBe(200);
  const items = res.json().items as { policyId: string; version: number; criterion: string; lawCitation?: string }[];
  expect(items.map((p) => p.policyId).sort()).toEqual([...DATA_CATEGORY_IDS].sort());
  expect(items.every((p) => p.version === 1)).toBe(true);
  expect(items.find((p) => p.policyId === 'device-info')).toMatchObject({ criterion: '5.2.3', lawCitation: expect.stringMatching(/Cybersecurity Law/) });
  expect((await app.inject({ url: '/v1/retention/admin/retention-policies', headers: h.auth('subj-1') })).statusCode).toBe(403);
});

it('seeds once when two instances start together on an empty database', async () => {
  const fresh = h.env();
  const [one, two] = await Promise.all([h.retention(fresh), h.retention(fresh)]);
  expect(await one.store.policies.countDocuments()).toBe(DATA_CATEGORY_IDS.length);
  expect(await two.store.policyVersions.countDocuments()).toBe(DATA_CATEGORY_IDS.length);
});

it('lets the DPO change a policy, keeps every version, audits it, and refuses stale edits', async () => {
  const body = { expectedVersion: 1, periodDays: 90, startsFrom: 'collection', criterion: '5.2.2', action: 'anonymize', rationale: 'shorter', note: 'DPIA 2026-03' };
  expect((await put('activity-log', body, op())).statusCode).toBe(403);
  const res = await put('activity-log', body);
  expect(res.statusCode).toBe(200);
  expect(res.json()).toMatchObject({ policyId: 'activity-log', version: 2, periodDays: 90, updatedBy: { role: 'dpo', actorId: 'dpo-1' } });
  const stale = await put('activity-log', { ...body, periodDays: 30 });
  expect(stale.statusCode).toBe(409);
  expect(stale.json().code).toBe('PIPP_RETENTION_POLICY_VERSION_CONFLICT');
  const versions = (await app.inject({ url: '/v1/retention/admin/retention-policies/activity-log/versions', headers: op() })).json().items;
  expect(versions.map((v: { version: number; change: string }) => [v.version, v.change])).toEqual([[2, 'updated'], [1, 'created']]);
  expect(versions[0]).toMatchObject({ note: 'DPIA 2026-03', policy: { periodDays: 90 } });
  expect(versions[1].policy.periodDays).toBe(180);
  expect(await app.store.audit.countDocuments({ action: 'retention-policy.put', 'target.id': 'activity-log' })).toBe(1);
  // Announced at start (the seeded 180 days) and on the change (90), for what shows retention dates.
  const announced = await events(env, 'privacy.retention.periods-changed', (e) => e.some((x) => x.payload.rules.some((r) => r.category === 'activity-log' && r.periodDays === 90)));
  const periods = announced.map((e) => e.payload.rules.find((r) => r.category === 'activity-log' && !r.service)?.periodDays);
  expect(periods[0]).toBe(180);
  expect(periods.at(-1)).toBe(90);
});

it('enforces the 5.2 criteria: a law must be cited, and only a law may keep data the subject wants erased', async () => {
  const base = { expectedVersion: 1, periodDays: 365, startsFrom: 'collection', action: 'erase' };
  const noLaw = await put('support-report', { ...base, criterion: '5.2.3' });
  expect(noLaw.statusCode).toBe(400);
  expect(noLaw.json()).toMatchObject({ code: 'PIPP_RETENTION_POLICY_INVALID', clause: '5.2', details: [{ path: '/body/lawCitation' }] });
  const keep = await put('support-report', { ...base, criterion: '5.2.1', keepOnErasure: true });
  expect(keep.json().details).toEqual([expect.objectContaining({ path: '/body/keepOnErasure' })]);
  expect((await put('support-report', { ...base, criterion: '5.2.3', lawCitation: 'Consumer Rights Protection Law art. 19' })).statusCode).toBe(200);
  expect((await put('support-report', { ...base, expectedVersion: 2, criterion: '5.2.1', periodDays: -1 })).statusCode).toBe(400);
  expect((await put('nonsense', { ...base, criterion: '5.2.1' })).statusCode).toBe(404);
  expect((await app.inject({ url: '/v1/retention/admin/retention-policies/profile', headers: op() })).json().version).toBe(1);
});

it('keeps service overrides separate: created at version 0, only for a holder, deletable; general ones are not', async () => {
  const body = { expectedVersion: 0, periodDays: 0, startsFrom: 'account-closure', criterion: '5.2.1', action: 'erase' };
  expect((await put('phone-number@consent', body)).json()).toMatchObject({ code: 'PIPP_RETENTION_POLICY_INVALID' });
  const created = await put('phone-number@incident', body);
  expect(created.statusCode).toBe(200);
  expect(created.json()).toMatchObject({ policyId: 'phone-number@incident', service: 'incident', version: 1 });
  expect((await put('phone-number@incident', body)).statusCode).toBe(409);
  const rules = await app.policies.rules();
  expect(rules.filter((r) => r.category === 'phone-number')).toEqual([
    expect.objectContaining({ periodDays: 30 }),
    expect.objectContaining({ service: 'incident', periodDays: 0 }),
  ]);
  expect((await app.inject({ method: 'DELETE', url: '/v1/retention/admin/retention-policies/phone-number?expectedVersion=1', headers: dpo() })).json().code).toBe('PIPP_RETENTION_POLICY_REQUIRED');
  expect((await app.inject({ method: 'DELETE', url: '/v1/retention/admin/retention-policies/phone-number@incident?expectedVersion=1', headers: dpo() })).statusCode).toBe(204);
  const versions = (await app.inject({ url: '/v1/retention/admin/retention-policies/phone-number@incident/versions', headers: op() })).json().items;
  expect(versions[0]).toMatchObject({ version: 2, change: 'deleted', policy: null });
});
