// The privacy rules of identity as pure functions (no broker, no database).
import { describe, expect, it } from 'vitest';
import { planErasure } from '../src/domain/erasure.js';
import { codeUsable, generateCode, hashCode, sameDigest } from '../src/domain/otp.js';
import { judgePassword } from '../src/domain/password.js';
import { parseMobileNumber } from '../src/domain/phone.js';
import { accountNameKey, normalizeAccountName, normalizeText, planProfileUpdate } from '../src/domain/profile.js';
import { assessRisk, ipNetwork, ipPrefix, needsCode } from '../src/domain/risk.js';
import { growingDelayMs, isLocked, lockAfter } from '../src/domain/throttle.js';
import { ecThumbprint } from '../src/domain/keys.js';

describe('phone numbers (2.4.1(1)i)', () => {
  it('folds every typed form of one mainland mobile number into one E.164 value', () => {
    for (const s of ['+86 138 0013 8000', '0086 13800138000', '13800138000', '＋８６ １３８ ００１３ ８０００', '+86-138-0013-8000', '(+86) 138.0013.8000']) {
      expect(parseMobileNumber(s, ['CN']), s).toEqual({ ok: true, e164: '+8613800138000', region: 'CN' });
    }
  });
  it('refuses fixed lines, other regions, short and non-numeric input with a reason', () => {
    for (const s of ['010 6552 9988', '+1 202 555 0143', '12345', 'call me', '', '+86 138 0013 8000 ext 5']) {
      const r = parseMobileNumber(s, ['CN']);
      expect(r.ok, s).toBe(false);
      if (!r.ok) expect(r.reason.length).toBeGreaterThan(10);
    }
    expect(parseMobileNumber('+852 5123 4567', ['CN', 'HK'])).toMatchObject({ ok: true, region: 'HK' });
  });
});

describe('one-time codes', () => {
  it('are 6 uniformly drawn digits and hashed per purpose and number', () => {
    const codes = new Set(Array.from({ length: 200 }, generateCode));
    expect([...codes].every((c) => /^\d{6}$/.test(c))).toBe(true);
    expect(codes.size).toBeGreaterThan(190);
    const pepper = Buffer.alloc(32, 7);
    expect(hashCode(pepper, 'register:k', '123456')).not.toBe(hashCode(pepper, 'sign-in:k', '123456'));
    expect(sameDigest(hashCode(pepper, 'a', '1'), hashCode(pepper, 'a', '1'))).toBe(true);
  });
  it('die when used, expired or tried too often', () => {
    const now = new Date();
    const fresh = { expiresAt: new Date(now.getTime() + 1000), attempts: 0, consumed: false };
    expect(codeUsable(fresh, now, 5)).toBe(true);
    expect(codeUsable({ ...fresh, consumed: true }, now, 5)).toBe(false);
    expect(codeUsable({ ...fresh, attempts: 5 }, now, 5)).toBe(false);
    expect(codeUsable({ ...fresh, expiresAt: now }, now, 5)).toBe(false);
  });
});

describe('passwords (5.4.1)', () => {
  it('refuses common and short passwords with an actionable reason and accepts long passphrases exactly as typed', () => {
    for (const pw of ['password', 'Password1!', 'qwertyuiop', '13800138000', 'short']) {
      const v = judgePassword(pw, { minScore: 3, minLength: 8, userInputs: ['13800138000'] });
      expect(v.ok, pw).toBe(false);
      if (!v.ok) expect(v.reason).toMatch(/characters|guess/);
    }
    expect(judgePassword('violet-harbour-quietly-73-lanterns', { minScore: 3, minLength: 8 }).ok).toBe(true);
    expect(judgePassword(`  ${'long passphrase with spaces '.repeat(5)}`, { minScore: 3, minLength: 8 }).ok).toBe(true);
    expect(judgePassword('x'.repeat(1025), { minScore: 0, minLength: 8 }).ok).toBe(false);
  });
});

describe('brute-force rules', () => {
  const rules = { lockThreshold: 5, lockMs: 60_000, delayBaseMs: 250, delayMaxMs: 3000 };
  it('delays more after each failure, capped, and locks at the threshold', () => {
    expect([1, 2, 3, 4, 10].map((n) => growingDelayMs(n, rules))).toEqual([0, 250, 500, 1000, 3000]);
    const now = new Date();
    expect(lockAfter(4, now, rules)).toBeUndefined();
    expect(lockAfter(5, now, rules)!.getTime()).toBe(now.getTime() + 60_000);
    expect(isLocked(new Date(now.getTime() + 1), now)).toBe(true);
    expect(isLocked(now, now)).toBe(false);
  });
});

describe('device risk (2.4.1(3))', () => {
  it('explains every point of the score', () => {
    const known = assessRisk({ knownDevice: true, hasDeviceId: true, knownNetwork: true, hasHistory: true, recentFailures: 0 });
    expect(known).toEqual({ score: 0, factors: [] });
    const risky = assessRisk({ knownDevice: false, hasDeviceId: true, knownNetwork: false, hasHistory: true, recentFailures: 5 });
    expect(risky.factors.map((f) => f.factor)).toEqual(['new-device', 'unusual-network', 'recent-failures']);
    expect(risky.score).toBe(100);
    expect(needsCode(risky, 50)).toBe(true);
    expect(needsCode(assessRisk({ knownDevice: false, hasDeviceId: true, knownNetwork: true, hasHistory: true, recentFailures: 0 }), 50)).toBe(false);
  });
  it('keeps only network prefixes of addresses', () => {
    expect(ipPrefix('203.0.113.9')).toBe('203.0.113.0/24');
    expect(ipNetwork('::ffff:203.0.113.9')).toBe('203.0.0.0/16');
    expect(ipPrefix('2001:db8:1:2::5')).toBe('2001:db8:1::/48');
  });
});

describe('profile fields (2.4.1(1)ii, 4.1)', () => {
  it('normalizes to NFC, refuses control characters and bidi overrides, and plans set/unset', () => {
    expect(normalizeText(' Cafe\u0301 ', 32)).toEqual({ ok: true, value: 'Café' });
    for (const bad of ['a\u0000b', 'tab\there', 'evil\u202Etxt', '   ', '\u200b', ' \u200d\u3000\ufeff ']) expect(normalizeText(bad, 32).ok, bad).toBe(false);
    // Invisible characters inside visible text stay (a joiner inside an emoji sequence, for one).
    expect(normalizeText('Lin \u{1F469}\u200D\u{1F4BB}', 32)).toEqual({ ok: true, value: 'Lin \u{1F469}\u200D\u{1F4BB}' });
    expect(normalizeAccountName('ab').ok).toBe(false);
    expect(accountNameKey('Lin_Wei')).toBe(accountNameKey('ＬＩＮ_wei'));
    // Look-alikes share a key (UTS #39 skeleton): a Cyrillic а, a digit for a letter, rn for m.
    for (const [a, b] of <[string, string][]>[['admin', '\u0430dmin'], ['paypal', 'paypa1'], ['lin.wei', 'lin.we\u0456'], ['sam', 'sarn'], ['Zhang', 'ZHANG'], ['paypal', 'paypaI'], ['paypal', 'paypa\u04cf'], ['paypal', 'paypa\u013a'], ['cafe', 'caf\u00e9'], ['lin_wei', 'LIN_WEI']]) expect(accountNameKey(b), b).toBe(accountNameKey(a));
    for (const [a, b] of <[string, string][]>[['张伟', '张三'], ['lin_wei', 'lin_wey'], ['anna', 'hanna']]) expect(accountNameKey(b), b).not.toBe(accountNameKey(a));
    expect(planProfileUpdate({ nickname: 'a', bio: 'b' }, { nickname: 'c', bio: null, gender: null })).toEqual({
      set: { 'profile.nickname': 'c' }, unset: { 'profile.bio': '' }, changed: ['nickname', 'bio'],
    });
  });
});

describe('erasure plan (4.1, 4.2)', () => {
  it('covers every category for an account, closes the account when the number goes, and keeps held categories', () => {
    const all = planErasure({ kind: 'account' }, [{ category: 'device-info', legalBasis: 'legal-obligation', evidenceRef: 'x', purgeAt: '2030-01-01T00:00:00Z' }]);
    expect(all.closesAccount).toBe(true);
    expect(all.categories).toContain('activity-log');
    expect([...all.held.keys()]).toEqual(['device-info']);
    expect(planErasure({ kind: 'categories', categories: ['activity-log', 'consent-record'] }, [])).toMatchObject({ categories: ['activity-log'], closesAccount: false });
    expect(planErasure({ kind: 'categories', categories: ['phone-number'] }, []).closesAccount).toBe(true);
  });
});

describe('key ids', () => {
  it('are RFC 7638 thumbprints (the RFC example key)', () => {
    // RFC 7638 §3.1 uses an RSA key; for EC the same rule gives this stable value for a fixed key.
    const jwk = { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' };
    expect(ecThumbprint(jwk)).toBe(ecThumbprint({ ...jwk }));
    expect(ecThumbprint(jwk)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
