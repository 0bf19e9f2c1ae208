// Registration and sign-in over HTTP on the real broker and database (policy 2.4.1(1), 5.4.1):
// phone normalization, one-time codes read from the SMS sink, policy acknowledgment, enumeration-
// resistant answers, lockout, and 100 parallel registrations of one number in mixed formats.
import { collectMessages, produceRaw, waitFor, withMongo } from '@pipp/testing';
import { createEvent } from '@pipp/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fullWidth, identityEnv, nationalSpaced, randomPhone, register, requestCode, startIdentity, stopIdentity,
  STRONG_PASSWORD, type IdentityApp,
} from './helpers.js';

let env: Record<string, string>;
let app: IdentityApp;

beforeAll(async () => {
  env = identityEnv({ SIGNIN_LOCK_THRESHOLD: '4', SIGNIN_DELAY_BASE_MS: '10', SIGNIN_DELAY_MAX_MS: '40' });
  app = await startIdentity(env);
});
afterAll(() => stopIdentity(app, env));

const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: `/v1/identity${url}`, payload: payload as Record<string, unknown>, headers });
const db = <T>(fn: (d: import('mongodb').Db) => Promise<T>) => withMongo((c) => fn(c.db(env.MONGO_DB)));
const withoutId = (b: Record<string, unknown>) => ({ ...b, requestId: undefined });

describe('registration', () => {
  it('creates one account per number whatever the typed form, and announces it with the acknowledged policy', async () => {
    const s = await register(app, env, { phone: nationalSpaced(randomPhone()).replace(/^/, '+86 ') });
    const account = await db((d) => d.collection('accounts').findOne({ _id: s.subjectId as never }));
    expect(account!.phone).toMatch(/^\+86139\d{8}$/);
    // The same number typed as 0086…, full-width, and with dashes: one account.
    for (const form of [`0086${account!.phone.slice(3)}`, fullWidth(account!.phone), `+86-${account!.phone.slice(3, 6)}-${account!.phone.slice(6)}`]) {
      const code = await requestCode(app, env, form, 'register');
      const res = await post('/public/registrations', { phone: form, code, policyAcknowledged: { documentId: 'general', version: 1 } });
      expect(res.statusCode, form).toBe(409);
      expect(res.json().code).toBe('PIPP_ALREADY_REGISTERED');
    }
    expect(await db((d) => d.collection('accounts').countDocuments({ phone: account!.phone }))).toBe(1);
    const signIn = await post('/public/sign-in', { phone: fullWidth(account!.phone), password: STRONG_PASSWORD, deviceId: 'device-test-0001' }, { 'user-agent': 'Mozilla/5.0 (Linux; Android 14) Chrome/120.0 Mobile' });
    expect(signIn.statusCode).toBe(200);
    expect(signIn.json().subjectId).toBe(s.subjectId);

    const msgs = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.subject.registered`, (m) => m.some((x) => x.key === s.subjectId));
    const event = JSON.parse(msgs.find((x) => x.key === s.subjectId)!.value!);
    expect(event.payload).toMatchObject({ subjectId: s.subjectId, policyAcknowledged: { documentId: 'general', version: 1 } });
    const contact = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.subject.contact-changed`, (m) => m.some((x) => x.key === s.subjectId));
    expect(JSON.parse(contact.find((x) => x.key === s.subjectId)!.value!).payload.channels).toEqual({ sms: account!.phone, telephone: account!.phone });
  });

  it('announces the profile purpose as granted when the registrant gave a password or nickname, and only then (2.4.1(1)ii)', async () => {
    const [withPassword, withNickname, bare] = [await register(app, env), await register(app, env, { password: '', nickname: 'Lin' }), await register(app, env, { password: '' })];
    const msgs = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.subject.registered`, (m) => [withPassword, withNickname, bare].every((s) => m.some((x) => x.key === s.subjectId)));
    const payloadOf = (subjectId: string) => JSON.parse(msgs.find((x) => x.key === subjectId)!.value!).payload as { grantedPurposes?: string[] };
    expect(payloadOf(withPassword.subjectId).grantedPurposes).toEqual(['profile']);
    expect(payloadOf(withNickname.subjectId).grantedPurposes).toEqual(['profile']);
    expect(payloadOf(bare.subjectId)).not.toHaveProperty('grantedPurposes');
  });

  it('refuses a nickname or password once the profile function is shut down, and still registers without them (2.4.2(5))', async () => {
    const ownEnv = identityEnv();
    const own = await startIdentity(ownEnv);
    try {
      const shutdown = createEvent('privacy.function.shutdown', { source: 'retention', payload: { shutdownId: 'sd-profile', functionId: 'profile', title: 'Optional profile', effectiveAt: new Date(Date.now() - 1000).toISOString(), action: 'erase', categories: ['profile', 'credentials'] } });
      await produceRaw(`${ownEnv.KAFKA_TOPIC_PREFIX}privacy.function.shutdown`, [{ key: shutdown.id, value: JSON.stringify(shutdown) }]);
      const phone = randomPhone();
      const attempt = async (extra: Record<string, string>) => own.inject({ method: 'POST', url: '/v1/identity/public/registrations', payload: { phone, code: await requestCode(own, ownEnv, phone, 'register'), policyAcknowledged: { documentId: 'general', version: 1 }, ...extra } });
      await waitFor(() => withMongo(async (c) => !!await c.db(ownEnv.MONGO_DB).collection('function_shutdowns').findOne({ _id: 'profile' as never })), { what: 'identity to note the shutdown' });
      for (const extra of [{ nickname: 'Lin' }, { password: STRONG_PASSWORD }] as Record<string, string>[]) {
        expect((await attempt(extra)).json(), JSON.stringify(extra)).toMatchObject({ code: 'PIPP_FUNCTION_SHUT_DOWN', clause: '2.4.2(5)' });
      }
      expect((await attempt({})).statusCode).toBe(201);
    } finally {
      await stopIdentity(own, ownEnv);
    }
  });

  it('refuses malformed numbers, bad codes, weak passwords, stale policies and hostile bodies with a 4xx and stores nothing', async () => {
    const phone = randomPhone();
    const before = await db((d) => d.collection('accounts').countDocuments());
    for (const bad of ['12345', '+1 202 555 0143', '010 6552 9988', 'abc', '1'.repeat(41), '+86 138 0013 800a']) {
      const res = await post('/public/codes', { phone: bad, purpose: 'register' });
      expect(res.statusCode, bad).toBe(400);
      expect(res.json().code, bad).toMatch(/PIPP_INVALID_PHONE|PIPP_VALIDATION/);
    }
    const code = await requestCode(app, env, phone, 'register');
    const ack = { documentId: 'general', version: 1 };
    const cases: [unknown, number, string][] = [
      [{ phone, code: code === '000000' ? '111111' : '000000', policyAcknowledged: ack }, 400, 'PIPP_INVALID_CODE'],
      [{ phone, code, policyAcknowledged: ack, password: 'password123' }, 400, 'PIPP_WEAK_PASSWORD'],
      [{ phone, code, policyAcknowledged: { documentId: 'general', version: 2 } }, 409, 'PIPP_POLICY_VERSION_STALE'],
      [{ phone, code, policyAcknowledged: { documentId: 'no-such-policy', version: 1 } }, 400, 'PIPP_VALIDATION'],
      [{ phone, code, policyAcknowledged: ack, $where: '1' }, 400, 'PIPP_VALIDATION'],
      [{ phone: { $gt: '' }, code, policyAcknowledged: ack }, 400, 'PIPP_VALIDATION'],
      [{ phone, code, policyAcknowledged: ack, nickname: 'x'.repeat(65) }, 400, 'PIPP_VALIDATION'],
      [{ phone, code, policyAcknowledged: ack, nickname: 'bad\u0007name' }, 400, 'PIPP_VALIDATION'],
      [{ phone, code, policyAcknowledged: ack, nickname: '\u200b\u3000' }, 400, 'PIPP_VALIDATION'],
    ];
    for (const [payload, status, errCode] of cases) {
      const res = await post('/public/registrations', payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(status);
      expect(res.json().code, JSON.stringify(payload)).toBe(errCode);
    }
    const stale = await post('/public/registrations', { phone, code, policyAcknowledged: { documentId: 'general', version: 2 } });
    expect(stale.json().clause).toBe('preamble');
    const proto = await app.inject({ method: 'POST', url: '/v1/identity/public/registrations', headers: { 'content-type': 'application/json' }, payload: `{"phone":"${phone}","code":"${code}","policyAcknowledged":{"documentId":"general","version":1},"__proto__":{"x":1}}` });
    expect(proto.statusCode).toBe(400);
    const form = await app.inject({ method: 'POST', url: '/v1/identity/public/registrations', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `phone=${phone}&code=${code}` });
    expect(form.statusCode).toBe(415);
    expect(await db((d) => d.collection('accounts').countDocuments())).toBe(before);
    // None of the refusals spent the code (only the wrong code counted one try): it still registers.
    const ok = await post('/public/registrations', { phone, code, policyAcknowledged: ack });
    expect(ok.statusCode).toBe(201);
  });

  it('accepts only the current general policy version once consent publishes a new one', async () => {
    const published = createEvent('privacy.policy.published', {
      source: 'consent',
      payload: { documentId: 'general', version: 2, appliesTo: 'general', restrictsRights: false, summary: 's', changes: ['c'], effectiveAt: new Date().toISOString(), noticeEndsAt: new Date().toISOString() },
    });
    await produceRaw(`${env.KAFKA_TOPIC_PREFIX}privacy.policy.published`, [{ key: published.id, value: JSON.stringify(published) }]);
    await waitFor(async () => (await db((d) => d.collection('policy_versions').findOne({ _id: 'general' as never })))?.version === 2, { what: 'policy v2' });
    const phone = randomPhone();
    const code = await requestCode(app, env, phone, 'register');
    expect((await post('/public/registrations', { phone, code, policyAcknowledged: { documentId: 'general', version: 1 } })).statusCode).toBe(409);
    expect((await post('/public/registrations', { phone, code, policyAcknowledged: { documentId: 'general', version: 2 } })).statusCode).toBe(201);
    await db((d) => d.collection('policy_versions').deleteMany({}));
  });

  it('makes exactly one account from 100 parallel registrations of one number in mixed formats', async () => {
    const phone = randomPhone();
    const code = await requestCode(app, env, phone, 'register');
    const forms = [phone, `0086${phone.slice(3)}`, phone.slice(3), fullWidth(phone), `+86 ${nationalSpaced(phone)}`];
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => post('/public/registrations', {
      phone: forms[i % forms.length], code, policyAcknowledged: { documentId: 'general', version: 1 },
    })));
    const statuses = results.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.every((s) => s === 201 || s === 400 || s === 409)).toBe(true);
    expect(await db((d) => d.collection('accounts').countDocuments({ phone }))).toBe(1);
  });
});

describe('one-time codes', () => {
  it('are 6 digits, single use, and dead after 5 wrong tries even for the right code', async () => {
    const phone = randomPhone();
    const code = await requestCode(app, env, phone, 'register');
    expect(code).toMatch(/^\d{6}$/);
    const doc = await db((d) => d.collection('otp_codes').findOne({}, { sort: { sentAt: -1 } }));
    expect(doc!.expiresAt.getTime() - doc!.sentAt.getTime()).toBeLessThanOrEqual(600_000);
    expect(JSON.stringify(doc)).not.toContain(code);
    const wrong = code === '123456' ? '654321' : '123456';
    for (let i = 0; i < 5; i += 1) {
      expect((await post('/public/registrations', { phone, code: wrong, policyAcknowledged: { documentId: 'general', version: 1 } })).statusCode).toBe(400);
    }
    expect((await post('/public/registrations', { phone, code, policyAcknowledged: { documentId: 'general', version: 1 } })).json().code).toBe('PIPP_INVALID_CODE');
    const fresh = await requestCode(app, env, phone, 'register');
    expect((await post('/public/registrations', { phone, code: fresh, policyAcknowledged: { documentId: 'general', version: 1 } })).statusCode).toBe(201);
    const again = await post('/public/sign-in', { phone, code: fresh });
    expect(again.statusCode).toBe(401); // a register code is spent, and never a sign-in code
  });

  it('are compared at most 5 times even when guesses arrive in parallel: the right code after them is refused', async () => {
    // Counted after a failed comparison, 300 parallel wrong guesses were all compared, and the right
    // one sent with them was accepted (password reset, registration, step-up: a breaker helper).
    const phone = randomPhone();
    const code = await requestCode(app, env, phone, 'register');
    const wrong = (i: number) => String((Number(code) + 1 + i) % 1_000_000).padStart(6, '0');
    const results = await Promise.all([...Array.from({ length: 10 }, (_, i) => app.security.verifyCode(phone, 'register', wrong(i))), app.security.verifyCode(phone, 'register', code)]);
    expect(results).toEqual(Array(11).fill(false));
    expect((await db((d) => d.collection('otp_codes').findOne({ sentAt: { $exists: true } }, { sort: { sentAt: -1 } })))!.attempts).toBe(11);
    // Within the first five, the right code is taken (and its try is not counted as a wrong one).
    const fresh = await requestCode(app, env, phone, 'register');
    const ok = await Promise.all([app.security.verifyCode(phone, 'register', wrong(0)), app.security.verifyCode(phone, 'register', fresh), app.security.verifyCode(phone, 'register', fresh)]);
    expect(ok).toEqual([false, true, false]);
  });

  it('expire after their validity', async () => {
    const phone = randomPhone();
    const code = await requestCode(app, env, phone, 'register');
    await db((d) => d.collection('otp_codes').updateMany({}, { $set: { expiresAt: new Date(Date.now() - 1000) } }));
    expect((await post('/public/registrations', { phone, code, policyAcknowledged: { documentId: 'general', version: 1 } })).json().code).toBe('PIPP_INVALID_CODE');
  });

  it('throttle resends per number and requests per client IP', async () => {
    const env2 = identityEnv({ OTP_RESEND_INTERVAL_S: '60', OTP_MAX_PER_IP_PER_HOUR: '2' });
    const app2 = await startIdentity(env2);
    try {
      const phone = randomPhone();
      const first = await app2.inject({ method: 'POST', url: '/v1/identity/public/codes', payload: { phone, purpose: 'sign-in' } });
      expect(first.statusCode).toBe(202);
      const second = await app2.inject({ method: 'POST', url: '/v1/identity/public/codes', payload: { phone: `0086${phone.slice(3)}`, purpose: 'sign-in' } });
      expect(second.statusCode).toBe(429);
      expect(Number(second.headers['retry-after'])).toBeGreaterThan(0);
      const third = await app2.inject({ method: 'POST', url: '/v1/identity/public/codes', payload: { phone: randomPhone(), purpose: 'sign-in' } });
      expect(third.statusCode).toBe(429); // third request from this IP in the hour (limit 2)
      const elsewhere = await app2.inject({ method: 'POST', url: '/v1/identity/public/codes', remoteAddress: '10.9.8.7', payload: { phone: randomPhone(), purpose: 'sign-in' } });
      expect(elsewhere.statusCode).toBe(202);
    } finally {
      await stopIdentity(app2, env2);
    }
  });
});

describe('enumeration resistance', () => {
  it('answers code requests, registrations and sign-ins the same for registered and unknown numbers, in comparable time', async () => {
    const known = await register(app, env);
    const unknown = randomPhone();
    const codeKnown = await post('/public/codes', { phone: known.phone, purpose: 'sign-in' });
    const codeUnknown = await post('/public/codes', { phone: unknown, purpose: 'sign-in' });
    expect(codeKnown.statusCode).toBe(codeUnknown.statusCode);
    expect(codeKnown.json()).toEqual(codeUnknown.json());
    const regKnown = await post('/public/registrations', { phone: known.phone, code: '000000', policyAcknowledged: { documentId: 'general', version: 1 } });
    const regUnknown = await post('/public/registrations', { phone: unknown, code: '000000', policyAcknowledged: { documentId: 'general', version: 1 } });
    expect([regKnown.statusCode, withoutId(regKnown.json())]).toEqual([regUnknown.statusCode, withoutId(regUnknown.json())]);

    const time = async (phone: string) => {
      const t = performance.now();
      const res = await post('/public/sign-in', { phone, password: 'wrong-password-entirely-9' }, { 'x-forwarded-for': '1.1.1.1' });
      return { ms: performance.now() - t, res };
    };
    // Interleaved samples, compared by median. Skipping the password hash for unknown numbers (the
    // fault this guards against) makes the ratio exceed 50; the bounds leave room for a loaded machine.
    const samples: { known: number[]; unknown: number[] } = { known: [], unknown: [] };
    for (let i = 0; i < 5; i += 1) {
      const k = await time(known.phone);
      const u = await time(unknown);
      expect(k.res.statusCode).toBe(401);
      expect(withoutId(k.res.json())).toEqual(withoutId(u.res.json()));
      samples.known.push(k.ms);
      samples.unknown.push(u.ms);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[2]!;
    const ratio = median(samples.known) / median(samples.unknown);
    expect(ratio).toBeGreaterThan(0.25);
    expect(ratio).toBeLessThan(4);
  });
});

describe('brute force', () => {
  it('locks a number after repeated failures and then answers even the right password exactly like a wrong one', async () => {
    const s = await register(app, env);
    const wrong = async () => post('/public/sign-in', { phone: s.phone, password: 'not-the-password-at-all' });
    const first = await wrong();
    for (let i = 0; i < 3; i += 1) await wrong();
    const locked = await post('/public/sign-in', { phone: s.phone, password: STRONG_PASSWORD, deviceId: 'device-test-0001' });
    expect(locked.statusCode).toBe(401);
    expect(withoutId(locked.json())).toEqual(withoutId(first.json()));
    // After the lock expires, the right password works again.
    await db((d) => d.collection('counters').updateMany({ lockedUntil: { $exists: true } }, { $set: { lockedUntil: new Date(Date.now() - 1000), count: 0 } }));
    const ok = await post('/public/sign-in', { phone: s.phone, password: STRONG_PASSWORD, deviceId: 'device-test-0001' }, { 'user-agent': 'Mozilla/5.0 (Linux; Android 14) Chrome/120.0 Mobile' });
    expect([200, 202]).toContain(ok.statusCode);
  });

  it('checks at most the threshold of concurrent guesses before locking', async () => {
    const s = await register(app, env);
    const results = await Promise.all(Array.from({ length: 20 }, () => post('/public/sign-in', { phone: s.phone, password: 'concurrent-wrong-guess' })));
    expect(results.every((r) => r.statusCode === 401)).toBe(true);
    const locked = await post('/public/sign-in', { phone: s.phone, password: STRONG_PASSWORD });
    expect(locked.statusCode).toBe(401);
    const failures = await db((d) => d.collection('sign_ins').countDocuments({ subjectId: s.subjectId, outcome: 'failed' }));
    expect(failures).toBeGreaterThan(0);
  });
});
