// Account settings, devices and risk, leak reports, activity logs and the erasure participant, over
// HTTP and Kafka on the real broker and database (policy 2.4.1(1)ii, 2.4.1(2), 2.4.1(3), 4.1, 4.1.2,
// 5.4.1; DESIGN.md erasure saga).
import { createEvent } from '@pipp/contracts';
import { collectMessages, produceRaw, waitFor, withMongo } from '@pipp/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { accountNameKey } from '../src/domain/profile.js';
import { bearer, latestCode, randomPhone, register, requestCode, startIdentity, startWithConsent, stopIdentity, STRONG_PASSWORD, type ConsentBeside, type IdentityApp } from './helpers.js';

let env: Record<string, string>;
let app: IdentityApp;
let consent: ConsentBeside;

beforeAll(async () => {
  // The real consent service beside identity: optional profile information needs its decision.
  ({ env, app, consent } = await startWithConsent());
});
afterAll(async () => {
  await consent?.stop();
  await stopIdentity(app, env);
});

/** Registers (with a password unless told otherwise) and waits until consent recorded the profile grant that implies. */
const registerWithProfile = async (opts: Parameters<typeof register>[2] = {}) => {
  const s = await register(app, env, opts);
  await consent.until(s.subjectId, 'profile');
  return s;
};

const req = (method: string, url: string, token: string, payload?: unknown) =>
  app.inject({ method: method as 'GET', url: `/v1/identity${url}`, headers: bearer(token), ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });
const db = <T>(fn: (d: import('mongodb').Db) => Promise<T>) => withMongo((c) => fn(c.db(env.MONGO_DB)));
const UA = 'Mozilla/5.0 (Linux; Android 14) Chrome/120.0 Mobile';

describe('profile and account settings', () => {
  it('lets the subject supplement, correct and remove optional fields, never the required number, and audits each change', async () => {
    const s = await registerWithProfile();
    const set = await req('PATCH', `/subjects/${s.subjectId}/profile`, s.accessToken, { nickname: ' Cafe\u0301 ', accountName: 'lin_wei', email: 'Lin@Example.com' });
    expect(set.statusCode).toBe(200);
    expect(set.json().profile).toEqual({ nickname: 'Café', accountName: 'lin_wei', email: 'lin@example.com' });
    const fix = await req('PATCH', `/subjects/${s.subjectId}/profile`, s.accessToken, { nickname: 'Lin', email: null });
    expect(fix.json().profile).toEqual({ nickname: 'Lin', accountName: 'lin_wei' });
    for (const [payload, status, code] of [
      [{ phone: null }, 409, 'PIPP_REQUIRED_DATA'],
      [{ nickname: 'a\u0000b' }, 400, 'PIPP_VALIDATION'],
      [{ nickname: 'x'.repeat(65) }, 400, 'PIPP_VALIDATION'],
      [{ $set: { phone: 'x' } }, 400, 'PIPP_VALIDATION'],
      [{}, 400, 'PIPP_VALIDATION'],
      [{ accountName: 'LIN_WEI' }, 200, undefined],
    ] as const) {
      const res = await req('PATCH', `/subjects/${s.subjectId}/profile`, s.accessToken, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(status);
      if (code) expect(res.json().code).toBe(code);
    }
    const other = await registerWithProfile();
    const taken = await req('PATCH', `/subjects/${other.subjectId}/profile`, other.accessToken, { accountName: 'Lin_Wei' });
    expect(taken.statusCode).toBe(409);
    // A look-alike with a Cyrillic і is the same name (UTS #39 skeleton).
    const lookAlike = await req('PATCH', `/subjects/${other.subjectId}/profile`, other.accessToken, { accountName: 'l\u0456n_wei' });
    expect(lookAlike.json()).toMatchObject({ code: 'PIPP_ACCOUNT_NAME_TAKEN' });
    expect((await req('GET', `/subjects/${s.subjectId}/profile`, other.accessToken)).statusCode).toBe(403);
    // Renaming releases all the holder's earlier reservations, one made under an earlier key function too.
    await db((d) => d.collection('account_names').insertOne({ _id: 'lin_wei (earlier key)' as never, subjectId: s.subjectId }));
    expect((await req('PATCH', `/subjects/${s.subjectId}/profile`, s.accessToken, { accountName: 'lin_wei_2' })).statusCode).toBe(200);
    expect(await db((d) => d.collection('account_names').find({ subjectId: s.subjectId }).toArray())).toEqual([{ _id: accountNameKey('lin_wei_2'), subjectId: s.subjectId }]);
    expect((await req('PATCH', `/subjects/${other.subjectId}/profile`, other.accessToken, { accountName: 'Lin_Wei' })).statusCode).toBe(200);
    // Parallel renames leave the holder exactly one reservation, of the name it shows (a breaker helper
    // had a second subject take a name the first still showed).
    const renames = await Promise.all(['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta'].map((n) => req('PATCH', `/subjects/${s.subjectId}/profile`, s.accessToken, { accountName: `${n}_${s.subjectId.slice(-6)}` })));
    expect(renames.map((r) => r.statusCode)).toEqual(renames.map(() => 200));
    const shown = (await req('GET', `/subjects/${s.subjectId}/profile`, s.accessToken)).json().profile.accountName as string;
    expect(await db((d) => d.collection('account_names').find({ subjectId: s.subjectId }).toArray())).toEqual([{ _id: accountNameKey(shown), subjectId: s.subjectId }]);
    expect((await req('PATCH', `/subjects/${other.subjectId}/profile`, other.accessToken, { accountName: shown })).json()).toMatchObject({ code: 'PIPP_ACCOUNT_NAME_TAKEN' });

    const audit = (await req('GET', `/subjects/${s.subjectId}/audit`, s.accessToken)).json().records;
    expect(audit.map((r: { action: string }) => r.action)).toEqual(expect.arrayContaining(['registered', 'profile-updated']));
    expect(JSON.stringify(audit)).not.toContain('lin@example.com');
    const contact = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.subject.contact-changed`, (m) => m.filter((x) => x.key === s.subjectId).length >= 3);
    const last = contact.filter((x) => x.key === s.subjectId).map((x) => JSON.parse(x.value!).payload.channels);
    expect(last).toContainEqual({ sms: s.phone, telephone: s.phone, email: 'lin@example.com' });
    expect(last.at(-1)).toEqual({ sms: s.phone, telephone: s.phone });

    // Two contact channels set in parallel: the last announcement lists both (each patch works on the
    // account as the one before left it; a breaker helper saw incident's directory lose one).
    const both = await registerWithProfile();
    await Promise.all([
      req('PATCH', `/subjects/${both.subjectId}/profile`, both.accessToken, { email: 'both@example.com' }),
      req('PATCH', `/subjects/${both.subjectId}/profile`, both.accessToken, { postalAddress: '1 Road Street' }),
    ]);
    const announced = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.subject.contact-changed`, (m) => m.filter((x) => x.key === both.subjectId).length >= 3);
    expect(announced.filter((x) => x.key === both.subjectId).map((x) => JSON.parse(x.value!).payload.channels).at(-1))
      .toEqual({ sms: both.phone, telephone: both.phone, email: 'both@example.com', letter: '1 Road Street' });
  });

  it('moves account-name reservations made under an earlier key function to the current key, once', async () => {
    const { rekeyAccountNames } = await import('../src/plugins/account-names.js');
    const s = await registerWithProfile();
    const name = `paypaI_${s.subjectId.slice(-6)}`;
    expect((await req('PATCH', `/subjects/${s.subjectId}/profile`, s.accessToken, { accountName: name })).statusCode).toBe(200);
    // As version 2 of the key stored it (case folded first: the capital I an i), and one whose holder is gone.
    await db(async (d) => {
      await d.collection('account_names').deleteMany({ subjectId: s.subjectId });
      await d.collection('account_names').insertMany([{ _id: name.toLowerCase() as never, subjectId: s.subjectId }, { _id: 'gone_holder' as never, subjectId: 'sub_gone' }]);
      await d.collection('migrations').deleteMany({});
    });
    const other = await registerWithProfile();
    const lookAlike = `paypal_${s.subjectId.slice(-6)}`;
    expect((await rekeyAccountNames(app)).moved).toBe(1);
    expect(await db((d) => d.collection('account_names').find({ subjectId: { $in: [s.subjectId, 'sub_gone'] } }).toArray())).toEqual([{ _id: accountNameKey(name), subjectId: s.subjectId }]);
    expect((await req('PATCH', `/subjects/${other.subjectId}/profile`, other.accessToken, { accountName: lookAlike })).json()).toMatchObject({ code: 'PIPP_ACCOUNT_NAME_TAKEN' });
    expect(await rekeyAccountNames(app)).toEqual({ moved: 0, dropped: 0, conflicts: [] }); // once per key version
  });

  it('keeps optional profile information and a login password only with consent to the profile purpose; removing and contact channels never need it (2.4.1(1)ii)', async () => {
    const s = await register(app, env, { password: '' }); // no optional information given: no profile grant
    await consent.until(s.subjectId, 'account');
    const account = async () => (await db((d) => d.collection('accounts').findOne({ _id: s.subjectId as never })))!;
    const refused = await req('PATCH', `/subjects/${s.subjectId}/profile`, s.accessToken, { nickname: 'Lin', email: 'lin@example.com' });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: 'PIPP_CONSENT_REQUIRED', clause: '2.4.1(1)ii' });
    expect((await account()).profile).toEqual({});
    expect((await req('PATCH', `/subjects/${s.subjectId}/profile`, s.accessToken, { email: 'lin@example.com' })).statusCode).toBe(200);
    const removal = await req('PATCH', `/subjects/${s.subjectId}/profile`, s.accessToken, { email: null, nickname: null });
    expect(removal.statusCode, removal.body).toBe(200);
    const put = await req('PUT', `/subjects/${s.subjectId}/password`, s.accessToken, { code: '000000', newPassword: 'amber-glacier-whistles-at-dawn-42' });
    expect(put.json()).toMatchObject({ code: 'PIPP_CONSENT_REQUIRED', clause: '2.4.1(1)ii' });
    const code = await requestCode(app, env, s.phone, 'password-reset');
    const reset = await app.inject({ method: 'POST', url: '/v1/identity/public/password-reset', payload: { phone: s.phone, code, newPassword: 'sapphire-tunnel-orchestra-1987' } });
    expect(reset.json()).toMatchObject({ code: 'PIPP_CONSENT_REQUIRED' });
    expect(await account()).not.toHaveProperty('passwordHash');

    // The subject grants the purpose in consent (identity's token is good there too); identity then keeps it.
    const grant = await consent.app.inject({ method: 'POST', url: `/v1/consent/subjects/${s.subjectId}/consents`, headers: bearer(s.accessToken), payload: { channel: 'app', changes: [{ purpose: 'profile', state: 'granted' }] } });
    expect(grant.statusCode, grant.body).toBeLessThan(300);
    await waitFor(async () => (await req('PATCH', `/subjects/${s.subjectId}/profile`, s.accessToken, { nickname: 'Lin' })).statusCode === 200, { what: 'the grant to reach identity' });
    expect((await account()).profile).toEqual({ nickname: 'Lin' });
    // The reset refused for consent did not spend its code: the same code works now.
    const retried = await app.inject({ method: 'POST', url: '/v1/identity/public/password-reset', payload: { phone: s.phone, code, newPassword: 'sapphire-tunnel-orchestra-1987' } });
    expect(retried.statusCode, retried.body).toBe(204);
    expect(await account()).toHaveProperty('passwordHash');
  });

  it('waits for consent to record the grant a registration just made, and refuses at once without one (2.4.1(1)ii)', async () => {
    const decide = app.consent.decide.bind(app.consent);
    let calls = 0;
    // Consent answers the first question as it would before the registration event reached it.
    const spy = vi.spyOn(app.consent, 'decide').mockImplementation(async (r) =>
      ++calls === 1 ? { allowed: false, basis: null, clause: '2.4.1(1)ii', reason: 'consent never given' } : decide(r));
    try {
      const early = await register(app, env, { nickname: 'Early' });
      const patch = await req('PATCH', `/subjects/${early.subjectId}/profile`, early.accessToken, { bio: 'early bird' });
      expect(patch.statusCode, patch.body).toBe(200);
      expect(calls).toBeGreaterThan(1);

      const bare = await register(app, env, { password: '' });
      await consent.until(bare.subjectId, 'account');
      calls = 1; // real answers only
      const started = Date.now();
      const refused = await req('PATCH', `/subjects/${bare.subjectId}/profile`, bare.accessToken, { bio: 'no grant' });
      expect(refused.json()).toMatchObject({ code: 'PIPP_CONSENT_REQUIRED' });
      expect(calls).toBe(2);
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      spy.mockRestore();
    }
  });

  it('does not store profile data or a password whose consent check came before a withdrawal that erased the profile (2.4.1(1)ii)', async () => {
    const s = await registerWithProfile({ nickname: 'Lin' });
    const { eraseOptionalProfile } = await import('../src/events/index.js');
    // The withdrawal's erasure lands between each request's consent check (allowed) and its write.
    const decide = app.consent.decide.bind(app.consent);
    const spy = vi.spyOn(app.consent, 'decide').mockImplementation(async (req) => {
      const decision = await decide(req);
      await eraseOptionalProfile(app, s.subjectId, ['profile', 'credentials'], 'rec-test');
      return decision;
    });
    try {
      const patch = await req('PATCH', `/subjects/${s.subjectId}/profile`, s.accessToken, { bio: 'likes tea', accountName: 'late_writer' });
      expect(patch.json()).toMatchObject({ code: 'PIPP_CONSENT_REQUIRED', clause: '2.4.1(1)ii' });
      const since = new Date();
      expect((await req('POST', `/subjects/${s.subjectId}/reauth-codes`, s.accessToken, {})).statusCode).toBe(202);
      const reauth = await latestCode(env, s.phone, since);
      const put = await req('PUT', `/subjects/${s.subjectId}/password`, s.accessToken, { code: reauth, newPassword: 'amber-glacier-whistles-at-dawn-42' });
      expect(put.json()).toMatchObject({ code: 'PIPP_CONSENT_REQUIRED', clause: '2.4.1(1)ii' });
      const code = await requestCode(app, env, s.phone, 'password-reset');
      const reset = await app.inject({ method: 'POST', url: '/v1/identity/public/password-reset', payload: { phone: s.phone, code, newPassword: 'sapphire-tunnel-orchestra-1987' } });
      expect(reset.json()).toMatchObject({ code: 'PIPP_CONSENT_REQUIRED', clause: '2.4.1(1)ii' });
    } finally {
      spy.mockRestore();
    }
    const account = (await db((d) => d.collection('accounts').findOne({ _id: s.subjectId as never })))!;
    expect(account.profile).toEqual({});
    expect(account).not.toHaveProperty('passwordHash');
    expect(await db((d) => d.collection('account_names').countDocuments({ subjectId: s.subjectId }))).toBe(0);
  });

  it('exports everything identity holds about the subject as JSON, without secrets', async () => {
    const s = await register(app, env, { nickname: 'Exporter' });
    const res = await req('GET', `/subjects/${s.subjectId}/export`, s.accessToken);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ format: 'pipp-identity-export/1', subjectId: s.subjectId, account: { phone: s.phone, profile: { nickname: 'Exporter' } }, credentials: { hasPassword: true } });
    expect(body.sessions).toHaveLength(1);
    expect(body.devices).toHaveLength(1);
    expect(body.devices[0]).toMatchObject({ purpose: 'security', legalBasis: 'service-security' });
    expect(body.signIns[0].retentionUntil).toBeDefined();
    const text = JSON.stringify(body);
    for (const secret of ['$argon2', 'refreshHash', 'previous', s.refreshToken.split('.')[1]!]) expect(text).not.toContain(secret);
  });

  it('changes the number only after re-authentication and a code sent to the new number', async () => {
    const s = await register(app, env);
    const newPhone = randomPhone();
    const noAuth = await req('POST', `/subjects/${s.subjectId}/phone-change`, s.accessToken, { newPhone });
    expect(noAuth.statusCode).toBe(403);
    const start = await req('POST', `/subjects/${s.subjectId}/phone-change`, s.accessToken, { newPhone, currentPassword: STRONG_PASSWORD });
    expect(start.statusCode).toBe(202);
    const code = await latestCode(env, newPhone);
    const done = await req('POST', `/subjects/${s.subjectId}/phone-change/${start.json().changeId}/confirm`, s.accessToken, { code });
    expect(done.json()).toEqual({ phone: newPhone });
    const signIn = await app.inject({ method: 'POST', url: '/v1/identity/public/sign-in', headers: { 'user-agent': UA }, payload: { phone: newPhone, password: STRONG_PASSWORD, deviceId: 'device-test-0001' } });
    expect(signIn.json().subjectId).toBe(s.subjectId);
  });

  it('lets a code confirm only the number change it was sent for', async () => {
    // Two accounts ask for the same new number: the second code replaced the first, and confirms the second change only.
    const [a, b] = [await register(app, env), await register(app, env)];
    const newPhone = randomPhone();
    const startA = await req('POST', `/subjects/${a.subjectId}/phone-change`, a.accessToken, { newPhone, currentPassword: STRONG_PASSWORD });
    const startB = await req('POST', `/subjects/${b.subjectId}/phone-change`, b.accessToken, { newPhone, currentPassword: STRONG_PASSWORD });
    expect([startA.statusCode, startB.statusCode]).toEqual([202, 202]);
    const code = await latestCode(env, newPhone);
    const byA = await req('POST', `/subjects/${a.subjectId}/phone-change/${startA.json().changeId}/confirm`, a.accessToken, { code });
    expect(byA.statusCode).toBe(404);
    const byB = await req('POST', `/subjects/${b.subjectId}/phone-change/${startB.json().changeId}/confirm`, b.accessToken, { code });
    expect(byB.json()).toEqual({ phone: newPhone });
  });

  it('changing the password ends every old session', async () => {
    const s = await register(app, env);
    const res = await req('PUT', `/subjects/${s.subjectId}/password`, s.accessToken, { currentPassword: STRONG_PASSWORD, newPassword: 'amber-glacier-whistles-at-dawn-42' });
    expect(res.statusCode).toBe(200);
    expect((await req('GET', `/subjects/${s.subjectId}/profile`, s.accessToken)).statusCode).toBe(401);
    expect((await app.inject({ method: 'POST', url: '/v1/identity/public/tokens/refresh', payload: { refreshToken: s.refreshToken } })).statusCode).toBe(401);
    expect((await req('GET', `/subjects/${s.subjectId}/profile`, res.json().accessToken)).statusCode).toBe(200);
    const weak = await req('PUT', `/subjects/${s.subjectId}/password`, res.json().accessToken, { currentPassword: 'amber-glacier-whistles-at-dawn-42', newPassword: 'qwerty123' });
    expect(weak.statusCode).toBe(400);
    expect(weak.json()).toMatchObject({ code: 'PIPP_WEAK_PASSWORD', clause: '5.4.1' });
  });

  it('lets a subject list and end sessions, and accepts 64+ character passwords exactly as typed', async () => {
    const long = `${'correct horse battery staple '.repeat(4)}!`;
    const s = await register(app, env, { password: long });
    const again = await app.inject({ method: 'POST', url: '/v1/identity/public/sign-in', headers: { 'user-agent': UA }, payload: { phone: s.phone, password: long, deviceId: 'device-test-0001' } });
    expect(again.statusCode).toBe(200);
    const truncated = await app.inject({ method: 'POST', url: '/v1/identity/public/sign-in', payload: { phone: s.phone, password: long.slice(0, 72) } });
    expect(truncated.statusCode).toBe(401);
    const list = (await req('GET', `/subjects/${s.subjectId}/sessions`, s.accessToken)).json().sessions;
    expect(list).toHaveLength(2);
    const end = await req('DELETE', `/subjects/${s.subjectId}/sessions/${again.json().sessionId}`, s.accessToken);
    expect(end.statusCode).toBe(204);
    expect((await req('GET', `/subjects/${s.subjectId}/profile`, again.json().accessToken)).statusCode).toBe(401);
  });
});

describe('devices and risk', () => {
  it('scores sign-ins from a new device and network, demands a code when high, and tells the subject', async () => {
    const s = await register(app, env, { ip: '127.0.0.1' });
    const risky = await app.inject({ method: 'POST', url: '/v1/identity/public/sign-in', remoteAddress: '203.0.113.9', headers: { 'user-agent': 'Mozilla/5.0 (Windows NT 10.0) Firefox/120.0' }, payload: { phone: s.phone, password: STRONG_PASSWORD, deviceId: 'device-other-0002' } });
    expect(risky.statusCode).toBe(202);
    expect(risky.json()).toMatchObject({ status: 'verification-required', method: 'sms-code' });
    const code = await latestCode(env, s.phone);
    const wrong = await app.inject({ method: 'POST', url: '/v1/identity/public/sign-in/verify', payload: { challengeId: risky.json().challengeId, code: code === '000000' ? '111111' : '000000' } });
    expect(wrong.statusCode).toBe(401);
    const ok = await app.inject({ method: 'POST', url: '/v1/identity/public/sign-in/verify', payload: { challengeId: risky.json().challengeId, code } });
    expect(ok.statusCode).toBe(200);
    const history = (await req('GET', `/subjects/${s.subjectId}/sign-ins`, s.accessToken)).json().signIns;
    const challenged = history.find((h: { outcome: string }) => h.outcome === 'code-required');
    expect(challenged.factors.map((f: { factor: string }) => f.factor)).toEqual(expect.arrayContaining(['new-device', 'unusual-network']));
    expect(challenged.score).toBeGreaterThanOrEqual(50);
    const devices = (await req('GET', `/subjects/${s.subjectId}/devices`, s.accessToken)).json().devices;
    expect(devices).toHaveLength(2);
    const notes = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.notification.requested`, (m) => m.some((x) => x.key === s.subjectId));
    const note = JSON.parse(notes.find((x) => x.key === s.subjectId)!.value!).payload;
    expect(note).toMatchObject({ kind: 'new-device-sign-in', requestedBy: 'identity', audience: { subjectIds: [s.subjectId] } });
    expect(JSON.stringify(note)).not.toContain(s.phone);
    // A device can be signed out and forgotten.
    const other = devices.find((d: { ipPrefix: string }) => d.ipPrefix === '203.0.113.0/24');
    expect((await req('DELETE', `/subjects/${s.subjectId}/devices/${other.deviceId}`, s.accessToken)).statusCode).toBe(204);
    expect((await req('GET', `/subjects/${s.subjectId}/profile`, ok.json().accessToken)).statusCode).toBe(401);
  });
});

describe('leak reports', () => {
  it('revokes every session, forces a password reset, and lets incident open a user report', async () => {
    const s = await register(app, env);
    const res = await req('POST', `/subjects/${s.subjectId}/leak-reports`, s.accessToken, { description: 'My password was in a breach list' });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ sessionsRevoked: 1, passwordResetRequired: true });
    expect((await req('GET', `/subjects/${s.subjectId}/profile`, s.accessToken)).statusCode).toBe(401);
    const blocked = await app.inject({ method: 'POST', url: '/v1/identity/public/sign-in', payload: { phone: s.phone, password: STRONG_PASSWORD } });
    expect(blocked.statusCode).toBe(401);
    const events = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.account.leak-reported`, (m) => m.some((x) => x.key === s.subjectId));
    expect(JSON.parse(events.find((x) => x.key === s.subjectId)!.value!).payload).toMatchObject({ subjectId: s.subjectId, reportedBy: 'subject', reportId: res.json().reportId });
    await new Promise((r) => setTimeout(r, 1100)); // a new sign-in falls in a later second than the revocation
    const code = await requestCode(app, env, s.phone, 'password-reset');
    const reset = await app.inject({ method: 'POST', url: '/v1/identity/public/password-reset', payload: { phone: s.phone, code, newPassword: 'sapphire-tunnel-orchestra-1987' } });
    expect(reset.statusCode).toBe(204);
    const back = await app.inject({ method: 'POST', url: '/v1/identity/public/sign-in', headers: { 'user-agent': UA }, payload: { phone: s.phone, password: 'sapphire-tunnel-orchestra-1987', deviceId: 'device-test-0001' } });
    expect(back.statusCode).toBe(200);
    expect((await req('GET', `/subjects/${s.subjectId}/profile`, back.json().accessToken)).statusCode).toBe(200);
  });

  it('does not lock out a subject who signs in by one-time code only (no password to reset)', async () => {
    const s = await register(app, env, { password: '' });
    const res = await req('POST', `/subjects/${s.subjectId}/leak-reports`, s.accessToken, {});
    expect(res.json()).toMatchObject({ sessionsRevoked: 1, passwordResetRequired: false });
    expect((await req('GET', `/subjects/${s.subjectId}/profile`, s.accessToken)).statusCode).toBe(401);
    await new Promise((r) => setTimeout(r, 1100)); // a new sign-in falls in a later second than the revocation
    const code = await requestCode(app, env, s.phone, 'sign-in');
    const back = await app.inject({ method: 'POST', url: '/v1/identity/public/sign-in', headers: { 'user-agent': UA }, payload: { phone: s.phone, code, deviceId: 'device-test-0001' } });
    expect(back.statusCode).toBe(200);
    expect((await req('GET', `/subjects/${s.subjectId}/profile`, back.json().accessToken)).statusCode).toBe(200);
  });
});

describe('withdrawn consent', () => {
  const withdraw = async (subjectId: string, purpose: string, scope?: Record<string, unknown>) => {
    const e = createEvent('privacy.consent.changed', { source: 'consent', subject: subjectId, payload: { subjectId, recordId: `rec-${purpose}-${Date.now()}`, purpose, state: 'withdrawn', ...(scope ? { scope } : {}), at: new Date().toISOString() } });
    await produceRaw(`${env.KAFKA_TOPIC_PREFIX}privacy.consent.changed`, [{ key: subjectId, value: JSON.stringify(e) }]);
  };

  it('erases what a withdrawn consent covered: the activity log (2.4.1(2)); the optional profile and login password, keeping contact channels and the account (2.4.1(1)ii); PIPL art. 47', async () => {
    const s = await registerWithProfile({ nickname: 'Lin' });
    expect((await req('PATCH', `/subjects/${s.subjectId}/profile`, s.accessToken, { accountName: 'withdraw_me', bio: 'likes tea', email: 'lin@example.com' })).statusCode).toBe(200);
    const account = () => db((d) => d.collection('accounts').findOne({ _id: s.subjectId as never }));
    // A withdrawal scoped to one recipient is not a withdrawal of the profile itself. (The subject's
    // events are handled in order: once the activity withdrawal behind it is done, so is this one.)
    await withdraw(s.subjectId, 'profile', { recipientId: 'rcp-1' });
    await db((d) => d.collection('activity').insertOne({ _id: `act-${s.subjectId}`, subjectId: s.subjectId, kind: 'search', at: new Date() } as never));
    await withdraw(s.subjectId, 'personalization');
    await waitFor(async () => (await db((d) => d.collection('activity').countDocuments({ subjectId: s.subjectId }))) === 0, { what: 'the activity deletion' });
    expect((await account())!.profile).toMatchObject({ nickname: 'Lin', accountName: 'withdraw_me' });
    await withdraw(s.subjectId, 'profile');
    await waitFor(async () => (await account())!.profile.nickname === undefined, { what: 'the profile erasure' });
    const after = (await account())!;
    expect(after.profile).toEqual({ email: 'lin@example.com' });
    expect(after).not.toHaveProperty('passwordHash');
    expect(after.status).toBe('active');
    expect(await db((d) => d.collection('account_names').countDocuments({ subjectId: s.subjectId }))).toBe(0);
    expect(await db((d) => d.collection('audit').countDocuments({ subjectId: s.subjectId, action: 'profile-erased:consent-withdrawn' }))).toBe(1);
    // The password no longer signs in; a one-time code still does.
    const byPassword = await app.inject({ method: 'POST', url: '/v1/identity/public/sign-in', headers: { 'user-agent': UA }, payload: { phone: s.phone, password: STRONG_PASSWORD, deviceId: 'device-test-0001' } });
    expect(byPassword.statusCode).toBe(401);
    const code = await requestCode(app, env, s.phone, 'sign-in');
    const byCode = await app.inject({ method: 'POST', url: '/v1/identity/public/sign-in', headers: { 'user-agent': UA }, payload: { phone: s.phone, code, deviceId: 'device-test-0001' } });
    expect(byCode.statusCode).toBe(200);
  });
  it('ignores a withdrawal older than the consent it last acted on (a late or replayed record): the current profile and password stay', async () => {
    const s = await registerWithProfile({ nickname: 'Current' });
    const change = async (purpose: string, state: 'granted' | 'withdrawn', at: number) => {
      const e = createEvent('privacy.consent.changed', { source: 'consent', subject: s.subjectId, payload: { subjectId: s.subjectId, recordId: `rec-${state}-${at}`, purpose, state, at: new Date(at).toISOString() } });
      await produceRaw(`${env.KAFKA_TOPIC_PREFIX}privacy.consent.changed`, [{ key: s.subjectId, value: JSON.stringify(e) }]);
    };
    const now = Date.now();
    await change('profile', 'granted', now);
    await change('profile', 'withdrawn', now - 60_000);
    // The subject's events are handled in order: once the activity withdrawal behind them is done, so are they.
    await db((d) => d.collection('activity').insertOne({ _id: `act-${s.subjectId}`, subjectId: s.subjectId, kind: 'search', at: new Date() } as never));
    await change('personalization', 'withdrawn', now);
    await waitFor(async () => (await db((d) => d.collection('activity').countDocuments({ subjectId: s.subjectId }))) === 0, { what: 'the activity deletion' });
    const account = (await db((d) => d.collection('accounts').findOne({ _id: s.subjectId as never })))!;
    expect(account.profile).toMatchObject({ nickname: 'Current' });
    expect(account).toHaveProperty('passwordHash');
  });

  it('keeps isolated what a legal hold covers when a withdrawal deletes it, with the hold\'s basis and end (policy 4.1); a released hold keeps nothing', async () => {
    const s = await registerWithProfile({ nickname: 'Held' });
    const until = new Date(Date.now() + 30 * 86_400_000);
    const hold = (status: 'active' | 'released') => createEvent('privacy.legal-hold.changed', {
      source: 'retention', subject: s.subjectId,
      payload: { holdId: 'lh-1', subjectId: s.subjectId, categories: ['profile', 'activity-log'], mode: 'block', legalBasis: 'law-enforcement', evidenceRef: 'Police request 2026-118', until: until.toISOString(), status },
    });
    const holdTopic = `${env.KAFKA_TOPIC_PREFIX}privacy.legal-hold.changed`;
    await produceRaw(holdTopic, [{ key: s.subjectId, value: JSON.stringify(hold('active')) }]);
    await waitFor(async () => db((d) => d.collection('subject_holds').findOne({ _id: 'lh-1' as never })), { what: 'the hold to arrive' });
    const activity = () => db((d) => d.collection('activity').insertOne({ _id: `act-${s.subjectId}-${Date.now()}`, subjectId: s.subjectId, kind: 'search', at: new Date() } as never));
    await activity();
    await withdraw(s.subjectId, 'personalization');
    await withdraw(s.subjectId, 'profile');
    await waitFor(async () => (await db((d) => d.collection('accounts').findOne({ _id: s.subjectId as never })))!.profile.nickname === undefined, { what: 'the profile erasure' });
    // The live data is gone (processing stops); a copy is isolated under the hold.
    expect(await db((d) => d.collection('activity').countDocuments({ subjectId: s.subjectId }))).toBe(0);
    const isolated = await db((d) => d.collection('legal_holds').find({ subjectId: s.subjectId }).sort({ category: 1 }).toArray());
    expect(isolated.map((h) => h.category)).toEqual(['activity-log', 'profile']);
    for (const h of isolated) expect(h).toMatchObject({ legalBasis: 'law-enforcement', evidenceRef: 'Police request 2026-118', purgeAt: until });
    expect(isolated[1]!.data).toMatchObject({ profile: { nickname: 'Held' } });
    expect(await db((d) => d.collection('audit').countDocuments({ subjectId: s.subjectId, action: 'kept:legal-hold' }))).toBe(2);
    // Released: what was kept under it goes at once (it stayed to the hold's original end), and a later
    // withdrawal deletes without keeping anything.
    await produceRaw(holdTopic, [{ key: s.subjectId, value: JSON.stringify(hold('released')) }]);
    await waitFor(async () => (await db((d) => d.collection('legal_holds').countDocuments({ subjectId: s.subjectId }))) === 0, { what: 'the release to purge the copies' });
    expect(await db((d) => d.collection('audit').countDocuments({ subjectId: s.subjectId, action: 'released:legal-hold' }))).toBe(1);
    await activity();
    await withdraw(s.subjectId, 'personalization');
    await waitFor(async () => (await db((d) => d.collection('activity').countDocuments({ subjectId: s.subjectId }))) === 0, { what: 'the second activity deletion' });
    expect(await db((d) => d.collection('legal_holds').countDocuments({ subjectId: s.subjectId }))).toBe(0);
  });

  it('keeps a copy under two overlapping holds until both are released, and a release is final even if the placement arrives after it', async () => {
    const s = await registerWithProfile({ nickname: 'Twice' });
    const holdTopic = `${env.KAFKA_TOPIC_PREFIX}privacy.legal-hold.changed`;
    const hold = (holdId: string, status: 'active' | 'released', days: number, evidenceRef: string) => ({
      key: s.subjectId,
      value: JSON.stringify(createEvent('privacy.legal-hold.changed', {
        source: 'retention', subject: s.subjectId,
        payload: { holdId, subjectId: s.subjectId, categories: ['activity-log'], mode: 'isolate', legalBasis: 'law-enforcement', evidenceRef, until: new Date(Date.now() + days * 86_400_000).toISOString(), status },
      })),
    });
    const copies = () => db((d) => d.collection('legal_holds').find({ subjectId: s.subjectId }).toArray());
    // A release delivered before its placement (a replay): the hold never becomes active.
    await produceRaw(holdTopic, [hold('lh-late', 'released', 20, 'Order L'), hold('lh-late', 'active', 20, 'Order L'), hold('lh-a', 'active', 60, 'Order A'), hold('lh-b', 'active', 30, 'Order B')]);
    await waitFor(async () => db((d) => d.collection('subject_holds').findOne({ _id: 'lh-b' as never })), { what: 'the holds' });
    expect((await db((d) => d.collection('subject_holds').findOne({ _id: 'lh-late' as never })))!.status).toBe('released');
    await db((d) => d.collection('activity').insertOne({ _id: `act-${s.subjectId}`, subjectId: s.subjectId, kind: 'search', at: new Date() } as never));
    await withdraw(s.subjectId, 'personalization');
    await waitFor(async () => (await copies()).length === 1, { what: 'the isolated copy' });
    expect((await copies())[0]).toMatchObject({ category: 'activity-log', evidenceRef: 'Order A' });
    // Releasing A leaves the copy under B; releasing B purges it.
    await produceRaw(holdTopic, [hold('lh-a', 'released', 60, 'Order A')]);
    await waitFor(async () => (await copies())[0]?.evidenceRef === 'Order B', { what: 'the copy to pass to the other hold' });
    await produceRaw(holdTopic, [hold('lh-b', 'released', 30, 'Order B')]);
    await waitFor(async () => (await copies()).length === 0, { what: 'the copy to go with the last hold' });
  });

  it('erases the part a narrower grant of the profile purpose no longer covers: the password without credentials, the profile without profile', async () => {
    const s = await registerWithProfile({ nickname: 'Narrow' });
    const account = async () => (await db((d) => d.collection('accounts').findOne({ _id: s.subjectId as never })))!;
    const grant = (categories: string[]) => consent.app.inject({ method: 'POST', url: `/v1/consent/subjects/${s.subjectId}/consents`, headers: bearer(s.accessToken), payload: { channel: 'app', changes: [{ purpose: 'profile', state: 'granted', categories }] } });
    expect((await grant(['profile'])).statusCode).toBe(201);
    await waitFor(async () => !('passwordHash' in await account()), { what: 'the password to go' });
    expect((await account()).profile).toEqual({ nickname: 'Narrow' });
    expect((await grant(['credentials'])).statusCode).toBe(201);
    await waitFor(async () => (await account()).profile.nickname === undefined, { what: 'the profile to go' });
  });
});

describe('activity logs', () => {
  it('fails closed when the consent service cannot answer, and refuses once the function is shut down', async () => {
    const s = await register(app, env);
    // A second instance of identity (same database and key) whose consent URL is a closed loopback port.
    const blind = await startIdentity({ ...env, CONSENT_URL: 'http://127.0.0.1:9' });
    try {
      const res = await blind.inject({ method: 'POST', url: `/v1/identity/subjects/${s.subjectId}/activity`, headers: bearer(s.accessToken), payload: { kind: 'search', query: 'running shoes' } });
      expect(res.statusCode).toBe(503);
      const profile = await blind.inject({ method: 'PATCH', url: `/v1/identity/subjects/${s.subjectId}/profile`, headers: bearer(s.accessToken), payload: { nickname: 'Unasked' } });
      expect(profile.statusCode).toBe(503);
    } finally {
      await blind.close();
    }
    expect(await db((d) => d.collection('activity').countDocuments({ subjectId: s.subjectId }))).toBe(0);
    expect((await db((d) => d.collection('accounts').findOne({ _id: s.subjectId as never })))!.profile).toEqual({});
    const shutdown = createEvent('privacy.function.shutdown', { source: 'retention', payload: { shutdownId: 'sd-1', functionId: 'personalization', title: 'Recommendations', effectiveAt: new Date(Date.now() - 1000).toISOString(), action: 'erase', categories: ['activity-log'] } });
    await produceRaw(`${env.KAFKA_TOPIC_PREFIX}privacy.function.shutdown`, [{ key: shutdown.id, value: JSON.stringify(shutdown) }]);
    await waitFor(async () => (await req('POST', `/subjects/${s.subjectId}/activity`, s.accessToken, { kind: 'browse', target: 'item-1' })).json().code === 'PIPP_FUNCTION_SHUT_DOWN', { what: 'the shutdown to apply' });
    const refused = await req('POST', `/subjects/${s.subjectId}/activity`, s.accessToken, { kind: 'browse', target: 'item-1' });
    expect(refused.json()).toMatchObject({ code: 'PIPP_FUNCTION_SHUT_DOWN', clause: '2.4.2(5)' });
  });
});

describe('erasure participant', () => {
  it('erases or anonymizes everything for the subject, keeps legal holds isolated, ends sessions, replies with counts, idempotently', async () => {
    const s = await registerWithProfile({ nickname: 'ToBeErased' });
    await req('PATCH', `/subjects/${s.subjectId}/profile`, s.accessToken, { accountName: 'erase_me', email: 'erase.me@example.com', postalAddress: '1 Erasure Road' });
    const keep = await register(app, env, { nickname: 'Bystander' });
    const request = (attempt: number) => createEvent('privacy.erasure.requested', {
      source: 'retention', subject: s.subjectId, correlationId: 'er-1',
      payload: {
        requestId: 'er-1', subjectId: s.subjectId, scope: { kind: 'account' }, ground: '4.1', origin: 'subject',
        requestedBy: { role: 'subject', actorId: s.subjectId },
        legalHolds: [{ category: 'device-info', legalBasis: 'legal-obligation', evidenceRef: 'Cybersecurity Law art. 21: logs kept 6 months', purgeAt: new Date(Date.now() + 180 * 86_400_000).toISOString() }],
        deadline: new Date(Date.now() + 86_400_000).toISOString(), attempt,
      },
    });
    const topic = `${env.KAFKA_TOPIC_PREFIX}privacy.erasure.requested`;
    await produceRaw(topic, [{ key: s.subjectId, value: JSON.stringify(request(1)) }]);
    const replies = `${env.KAFKA_TOPIC_PREFIX}privacy.erasure.participant-replied`;
    // Consent is a participant too and answers on the same topic: identity's own reply is the one here.
    const identityReplies = (m: Awaited<ReturnType<typeof collectMessages>>) => m.filter((x) => x.key === s.subjectId).map((x) => JSON.parse(x.value!).payload).filter((p) => p.participant === 'identity');
    const first = await collectMessages(replies, (m) => identityReplies(m).length >= 1);
    const reply = identityReplies(first)[0];
    expect(reply).toMatchObject({ requestId: 'er-1', participant: 'identity', status: 'completed', attempt: 1 });
    expect(reply.counts.anonymized).toBe(1);
    expect(reply.counts.erased).toBeGreaterThan(0);
    expect(reply.counts.kept).toBe(1);
    expect(reply.kept[0]).toMatchObject({ category: 'device-info', legalBasis: 'legal-obligation' });

    // Tokens stop working; nothing outside the isolated legal hold holds the phone or the profile.
    expect((await req('GET', `/subjects/${s.subjectId}/profile`, s.accessToken)).statusCode).toBe(401);
    const leftovers = await db(async (d) => {
      const found: string[] = [];
      for (const { name } of await d.listCollections().toArray()) {
        if (name === 'legal_holds') continue;
        for (const doc of await d.collection(name).find({}).toArray()) {
          const text = JSON.stringify(doc);
          for (const pi of [s.phone, s.phone.slice(3), 'ToBeErased', 'erase_me', 'erase.me@example.com', '1 Erasure Road']) if (text.includes(pi)) found.push(`${name}: ${pi}`);
        }
      }
      return found;
    });
    expect(leftovers).toEqual([]);
    const hold = await db((d) => d.collection('legal_holds').findOne({ subjectId: s.subjectId }));
    expect(hold).toMatchObject({ category: 'device-info', legalBasis: 'legal-obligation' });
    expect((await req('GET', `/subjects/${keep.subjectId}/profile`, keep.accessToken)).json().profile).toEqual({ nickname: 'Bystander' });
    // The number may register again as a new, unrelated account.
    const code = await requestCode(app, env, s.phone, 'register');
    const again = await app.inject({ method: 'POST', url: '/v1/identity/public/registrations', payload: { phone: s.phone, code, policyAcknowledged: { documentId: 'general', version: 1 } } });
    expect(again.statusCode).toBe(201);
    expect(again.json().subjectId).not.toBe(s.subjectId);

    // Redelivery (attempt 2): the same answer, nothing changed.
    await produceRaw(topic, [{ key: s.subjectId, value: JSON.stringify(request(2)) }]);
    const second = await collectMessages(replies, (m) => identityReplies(m).length >= 2);
    const replay = identityReplies(second).find((p) => p.attempt === 2);
    expect(replay.counts).toEqual(reply.counts);
    expect(replay.kept).toEqual(reply.kept);
  });

  it('shows the subject what is kept by law, without the hold\'s evidence', async () => {
    const s = await register(app, env);
    const hold = { category: 'device-info' as const, legalBasis: 'law-enforcement' as const, evidenceRef: 'POLICE-CASE-E-99', purgeAt: new Date(Date.now() + 30 * 86_400_000).toISOString() };
    const event = createEvent('privacy.erasure.requested', {
      source: 'retention', subject: s.subjectId, correlationId: 'er-cat-hold',
      payload: {
        requestId: 'er-cat-hold', subjectId: s.subjectId, scope: { kind: 'categories', categories: ['device-info'] }, ground: '4.1', origin: 'subject',
        requestedBy: { role: 'subject', actorId: s.subjectId }, legalHolds: [hold], deadline: new Date(Date.now() + 86_400_000).toISOString(), attempt: 1,
      },
    });
    await produceRaw(`${env.KAFKA_TOPIC_PREFIX}privacy.erasure.requested`, [{ key: s.subjectId, value: JSON.stringify(event) }]);
    await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.erasure.participant-replied`, (m) => m.some((x) => x.value!.includes('er-cat-hold')));
    const exported = (await req('GET', `/subjects/${s.subjectId}/export`, s.accessToken)).json();
    expect(exported.keptByLaw).toEqual([expect.objectContaining({ category: 'device-info', legalBasis: 'law-enforcement' })]);
    expect(JSON.stringify(exported)).not.toContain('POLICE-CASE-E-99');
  });

  it('still reports the isolated copy when a run that failed half-way is run again (the data itself is gone by then)', async () => {
    const s = await register(app, env, { nickname: 'HalfWay' });
    const hold = { category: 'device-info' as const, legalBasis: 'legal-obligation' as const, evidenceRef: 'Cybersecurity Law art. 21: logs kept 6 months', purgeAt: new Date(Date.now() + 180 * 86_400_000).toISOString() };
    const event = createEvent('privacy.erasure.requested', {
      source: 'retention', subject: s.subjectId, correlationId: 'er-half',
      payload: {
        requestId: 'er-half', subjectId: s.subjectId, scope: { kind: 'account' }, ground: '4.1', origin: 'subject',
        requestedBy: { role: 'subject', actorId: s.subjectId }, legalHolds: [hold], deadline: new Date(Date.now() + 86_400_000).toISOString(), attempt: 1,
      },
    });
    // The first run isolates and erases everything, then fails to record its answer; the consumer runs it again.
    const insert = app.outbox.insert.bind(app.outbox);
    let failures = 0;
    const spy = vi.spyOn(app.outbox, 'insert').mockImplementation(async (model, doc, entries) => {
      if ((model as unknown) === app.models.erasures && failures === 0) { failures += 1; throw new Error('the answer could not be recorded (injected)'); }
      return insert(model, doc, entries);
    });
    try {
      await produceRaw(`${env.KAFKA_TOPIC_PREFIX}privacy.erasure.requested`, [{ key: s.subjectId, value: JSON.stringify(event) }]);
      const mine = (m: Awaited<ReturnType<typeof collectMessages>>) => m.filter((x) => x.key === s.subjectId).map((x) => JSON.parse(x.value!).payload).filter((p) => p.participant === 'identity');
      const replies = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.erasure.participant-replied`, (m) => mine(m).length >= 1);
      const reply = mine(replies)[0];
      expect(failures).toBe(1);
      expect(reply).toMatchObject({ requestId: 'er-half', status: 'completed', counts: { kept: 1 }, kept: [{ category: 'device-info', legalBasis: 'legal-obligation' }] });
    } finally {
      spy.mockRestore();
    }
  });
});

