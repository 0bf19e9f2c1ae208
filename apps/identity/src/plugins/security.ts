import { upsertRaced } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { createHmac } from 'node:crypto';
import type { Config } from '../config.js';
import { codeMessage, codeUsable, generateCode, hashCode, type OtpPurpose } from '../domain/otp.js';
import { growingDelayMs, isLocked, windowStart, type ThrottleRules } from '../domain/throttle.js';
import { IdentityErrors } from '../errors.js';
import type { KeyRing } from './keys.js';

const HOUR_MS = 3_600_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Outcome of reserving a sign-in attempt: verify only when `allowed`; wait `delayMs` first. */
export interface AttemptTicket { allowed: boolean; delayMs: number; key: string }

export interface Security {
  /** Keyed hash of an E.164 number: the id of counters and codes, so they hold no number in clear. */
  phoneKey(e164: string): string;
  /** Keyed hash of a client IP. */
  ipKey(ip: string): string;
  /**
   * Sends a one-time code for `purpose` to `e164` (policy 2.4.1(1)i identity verification): 6 digits
   * from the CSPRNG, valid OTP_TTL_S (≤ 10 min), single use, dead after OTP_MAX_ATTEMPTS wrong tries; a
   * new code replaces the previous one. Throttled per number (OTP_RESEND_INTERVAL_S between codes,
   * OTP_MAX_PER_NUMBER_PER_HOUR) and per client IP (OTP_MAX_PER_IP_PER_HOUR).
   * @throws PIPP_TOO_MANY_REQUESTS (429, Retry-After) when a limit is reached.
   */
  issueCode(e164: string, purpose: OtpPurpose, ip: string): Promise<{ expiresIn: number; resendAfter: number }>;
  /** Consumes the code if it is right and usable (atomically: a code verifies once); counts a wrong try. */
  verifyCode(e164: string, purpose: OtpPurpose, code: string): Promise<boolean>;
  /**
   * Makes usable again, until it expires, a code `verifyCode` just accepted, when the request it came
   * with was refused for a reason that is not the code's (a missing consent): the caller retries with
   * it instead of waiting for a new one. Its wrong-try count is unchanged.
   */
  releaseCode(e164: string, purpose: OtpPurpose): Promise<void>;
  /**
   * Reserves a sign-in attempt for a number (counted whether or not it is registered): refused while
   * locked or past the lock threshold (concurrent attempts included), with the growing delay to apply.
   */
  reserveAttempt(e164: string): Promise<AttemptTicket>;
  /** A successful sign-in clears the failure count. */
  attemptSucceeded(ticket: AttemptTicket): Promise<void>;
  /** A failed attempt: locks the number once failures reach the threshold; counts the client IP. */
  attemptFailed(ticket: AttemptTicket, ip: string): Promise<void>;
  /** @throws PIPP_TOO_MANY_REQUESTS when this client IP failed too often this hour. */
  checkIp(ip: string): Promise<void>;
  /** Waits `ms` (the growing delay) without holding the CPU. */
  delay(ms: number): Promise<void>;
  /** Counts one event in a fixed window; returns the count including this one. */
  hit(key: string, windowMs: number): Promise<number>;
}

declare module 'fastify' {
  interface FastifyInstance {
    security: Security;
  }
}

export const securityPlugin = fp(async function security(app: FastifyInstance, opts: { config: Config; keys: KeyRing }) {
  const { config } = opts;
  const { otpCodes, counters } = app.models;
  const codePepper = opts.keys.derive('otp-code');
  const idPepper = opts.keys.derive('counter-id');
  const keyed = (kind: string, value: string) => createHmac('sha256', idPepper).update(`${kind}\u0000${value}`).digest('base64url').slice(0, 32);
  const rules: ThrottleRules = {
    lockThreshold: config.SIGNIN_LOCK_THRESHOLD,
    lockMs: config.SIGNIN_LOCK_S * 1000,
    delayBaseMs: config.SIGNIN_DELAY_BASE_MS,
    delayMaxMs: config.SIGNIN_DELAY_MAX_MS,
  };

  async function hit(key: string, windowMs: number): Promise<number> {
    const now = new Date();
    const start = windowStart(now, windowMs);
    const doc = await upsertRaced(() => counters.findOneAndUpdate(
      { _id: `${key}@${start}` },
      { $inc: { count: 1 }, $setOnInsert: { purgeAt: new Date(start + windowMs + HOUR_MS) } },
      { upsert: true, new: true },
    ).lean());
    return doc?.count ?? 1;
  }

  function retryAfter(windowMs: number): number {
    const now = Date.now();
    return Math.max(1, Math.ceil((windowStart(new Date(now), windowMs) + windowMs - now) / 1000));
  }

  const api: Security = {
    phoneKey: (e164) => keyed('phone', e164),
    ipKey: (ip) => keyed('ip', ip),
    hit,
    delay: async (ms) => { if (ms > 0) await sleep(ms); },

    async issueCode(e164, purpose, ip) {
      if (await hit(`otp-ip:${api.ipKey(ip)}`, HOUR_MS) > config.OTP_MAX_PER_IP_PER_HOUR) {
        throw IdentityErrors.tooMany('Too many codes were requested from your network; try again later', { retryAfter: retryAfter(HOUR_MS), clause: '5.4.1' });
      }
      const phoneKey = api.phoneKey(e164);
      if (await hit(`otp-num:${phoneKey}`, HOUR_MS) > config.OTP_MAX_PER_NUMBER_PER_HOUR) {
        throw IdentityErrors.tooMany('Too many codes were sent to this number; try again later', { retryAfter: retryAfter(HOUR_MS), clause: '5.4.1' });
      }
      const now = new Date();
      const id = `${purpose}:${phoneKey}`;
      const code = generateCode();
      const expiresAt = new Date(now.getTime() + config.OTP_TTL_S * 1000);
      // One atomic replace, conditional on the resend interval: two racing requests cannot both send.
      try {
        await otpCodes.findOneAndUpdate(
          { _id: id, sentAt: { $lte: new Date(now.getTime() - config.OTP_RESEND_INTERVAL_S * 1000) } },
          { $set: { codeHash: hashCode(codePepper, id, code), expiresAt, attempts: 0, consumed: false, sentAt: now, purgeAt: new Date(expiresAt.getTime() + HOUR_MS) } },
          { upsert: true },
        );
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
        const current = await otpCodes.findById(id, { sentAt: 1 }).lean();
        const wait = current ? Math.ceil((current.sentAt.getTime() + config.OTP_RESEND_INTERVAL_S * 1000 - now.getTime()) / 1000) : 1;
        throw IdentityErrors.tooMany(`A code was just sent; you can ask for another in ${Math.max(1, wait)} s`, { retryAfter: Math.max(1, wait), clause: '5.4.1' });
      }
      await app.sms.send({ to: e164, text: codeMessage(purpose, code, config.OTP_TTL_S), purpose });
      return { expiresIn: config.OTP_TTL_S, resendAfter: config.OTP_RESEND_INTERVAL_S };
    },

    async verifyCode(e164, purpose, code) {
      const id = `${purpose}:${api.phoneKey(e164)}`;
      // Each try is counted before its code is compared, so parallel guesses each take a number and
      // only the first OTP_MAX_ATTEMPTS are compared at all: counted after a failed comparison, 300
      // parallel wrong guesses were all compared and the right one among them was accepted. The
      // document lock keeps this process's tries in turn (FerretDB loses concurrent `$inc`s of one
      // document); across instances the `$inc` is atomic on MongoDB.
      return app.outbox.withDocument(otpCodes, id, async () => {
        const now = new Date();
        const tried = await otpCodes.findOneAndUpdate({ _id: id, consumed: false, expiresAt: { $gt: now } }, { $inc: { attempts: 1 } }, { new: true }).lean();
        // `attempts` now counts this try: it is compared only if fewer came before it.
        if (!tried || !codeUsable({ ...tried, attempts: tried.attempts - 1 }, now, config.OTP_MAX_ATTEMPTS)) return false;
        if (tried.codeHash !== hashCode(codePepper, id, code)) return false;
        // The right code: used up, and its try is not a wrong one.
        const used = await otpCodes.updateOne({ _id: id, consumed: false }, { $set: { consumed: true }, $inc: { attempts: -1 } });
        return used.modifiedCount === 1;
      });
    },

    async releaseCode(e164, purpose) {
      await otpCodes.updateOne({ _id: `${purpose}:${api.phoneKey(e164)}`, consumed: true, expiresAt: { $gt: new Date() } }, { $set: { consumed: false } });
    },

    async reserveAttempt(e164) {
      const key = `signin:${api.phoneKey(e164)}`;
      const now = new Date();
      const before = await counters.findById(key, { lockedUntil: 1 }).lean();
      if (isLocked(before?.lockedUntil, now)) return { allowed: false, delayMs: 0, key };
      // Count the attempt before checking it, so concurrent guesses each get their own number.
      const doc = await upsertRaced(() => counters.findOneAndUpdate(
        { _id: key },
        { $inc: { count: 1 }, $set: { purgeAt: new Date(now.getTime() + rules.lockMs + 24 * HOUR_MS) } },
        { upsert: true, new: true },
      ).lean());
      const n = doc?.count ?? 1;
      if (n > rules.lockThreshold) {
        // Attempts beyond the threshold (e.g. fired concurrently) lock the number without being checked.
        await counters.updateOne({ _id: key }, { $set: { lockedUntil: new Date(now.getTime() + rules.lockMs), count: 0 } });
        return { allowed: false, delayMs: 0, key };
      }
      return { allowed: true, delayMs: growingDelayMs(n - 1, rules), key };
    },

    async attemptSucceeded(ticket) {
      await counters.updateOne({ _id: ticket.key }, { $set: { count: 0 } });
    },

    async attemptFailed(ticket, ip) {
      await hit(`signin-ip-fail:${api.ipKey(ip)}`, HOUR_MS);
      if (!ticket.allowed) return;
      const doc = await counters.findById(ticket.key).lean();
      if (doc && doc.count >= rules.lockThreshold) {
        await counters.updateOne({ _id: ticket.key }, { $set: { lockedUntil: new Date(Date.now() + rules.lockMs), count: 0 } });
      }
    },

    async checkIp(ip) {
      const start = windowStart(new Date(), HOUR_MS);
      const doc = await counters.findById(`signin-ip-fail:${api.ipKey(ip)}@${start}`).lean();
      if (doc && doc.count >= config.SIGNIN_MAX_FAILURES_PER_IP) {
        throw IdentityErrors.tooMany('Too many failed sign-ins from your network; try again later', { retryAfter: retryAfter(HOUR_MS), clause: '5.4.1' });
      }
    },
  };
  app.decorate('security', api);
}, { name: 'identity-security', dependencies: ['identity-models', 'identity-sms'] });
