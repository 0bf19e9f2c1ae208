import { Errors } from '@pipp/service-kit';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { Config } from '../../config.js';
import { needsCode } from '../../domain/risk.js';
import { IdentityErrors } from '../../errors.js';
import type { Assessed } from '../../plugins/devices.js';
import { ChallengeSchema, CodeInput, DeviceIdInput, errors, PasswordInput, PhoneInput, TokenPairSchema } from '../../schemas.js';
import { requirePhone } from '../helpers.js';

type Kind = 'subject' | 'staff';
interface Principal { _id: string; kind: Kind; role: 'subject' | 'operator' | 'dpo'; phone: string }

/**
 * Sign-in (policy 2.4.1(1)i: verify the user's identity; 5.4.1 account security; 2.4.1(3) risk):
 * - `POST /v1/identity/public/sign-in` (anonymous): phone + password, or phone + one-time code
 *   (purpose `sign-in`). 200 tokens; 202 `verification-required` when the password was right but the
 *   risk score reaches RISK_CODE_THRESHOLD (a `step-up` code is sent to the account's number).
 * - `POST /v1/identity/public/sign-in/verify` (anonymous): completes a challenge with that code.
 * - `POST /v1/identity/public/staff/sign-in` (anonymous): operators and the DPO, phone + password, the
 *   same risk rules.
 * Failures are one 401 PIPP_SIGN_IN_FAILED, identical (status, body, comparable timing: a throwaway
 * argon2 check runs when there is no account) for unknown numbers, wrong passwords or codes, and
 * locked numbers. Each number is locked after SIGNIN_LOCK_THRESHOLD failures for SIGNIN_LOCK_S, with a
 * growing delay before that; 429 when one client IP fails SIGNIN_MAX_FAILURES_PER_IP times an hour.
 */
const signInRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, opts) => {
  const { config } = opts;
  const CHALLENGE_TTL_S = 600;

  /** A subject cannot sign in: the account is not active, or a leak report requires its password to be reset first. */
  const subjectBlocked = (a: { status: string; mustResetPassword?: boolean; passwordHash?: string | undefined }) =>
    a.status !== 'active' || (!!a.mustResetPassword && !!a.passwordHash);

  async function findPrincipal(kind: Kind, phone: string): Promise<(Principal & { passwordHash?: string; blocked: boolean }) | null> {
    if (kind === 'subject') {
      const a = await app.models.accounts.findOne({ phone }).select('+passwordHash').lean();
      if (!a) return null;
      return { _id: a._id, kind, role: 'subject', phone, ...(a.passwordHash ? { passwordHash: a.passwordHash } : {}), blocked: subjectBlocked(a) };
    }
    const s = await app.models.staff.findOne({ phone }).select('+passwordHash').lean();
    if (!s) return null;
    return { _id: s._id, kind, role: s.role, phone, passwordHash: s.passwordHash, blocked: !s.active };
  }

  async function failed(request: FastifyRequest, ticket: Awaited<ReturnType<typeof app.security.reserveAttempt>>, principal: Principal | null, method: 'password' | 'code' | 'step-up'): Promise<never> {
    await app.security.attemptFailed(ticket, request.ip);
    // Recorded after answering, so a registered number does not answer measurably slower (enumeration).
    if (principal) {
      const signals = app.devices.signals(request);
      setImmediate(() => { app.devices.recordFailure(principal._id, method, signals).catch((err: unknown) => app.log.warn({ err }, 'could not record a failed sign-in')); });
    }
    throw IdentityErrors.signInFailed();
  }

  /** After the credentials were proven: finish, or open a code challenge when the risk is high. */
  async function proceed(request: FastifyRequest, principal: Principal, assessed: Assessed, method: 'password' | 'code', stepUpDone: boolean) {
    if (!stepUpDone && needsCode(assessed.assessment, config.RISK_CODE_THRESHOLD)) {
      const now = new Date();
      const challengeId = `chl_${randomUUID().replace(/-/g, '')}`;
      const assessmentId = await app.devices.recordChallenge(principal._id, method, assessed);
      await app.models.challenges.create({
        _id: challengeId, subjectId: principal._id, kind: principal.kind, phone: principal.phone, deviceKey: assessed.deviceKey,
        deviceLabel: assessed.label, assessmentId, expiresAt: new Date(now.getTime() + CHALLENGE_TTL_S * 1000), consumed: false,
        purgeAt: new Date(now.getTime() + 2 * CHALLENGE_TTL_S * 1000),
      });
      await app.security.issueCode(principal.phone, 'step-up', request.ip);
      return { status: 202, body: { status: 'verification-required' as const, challengeId, method: 'sms-code' as const, expiresIn: CHALLENGE_TTL_S, reasons: assessed.assessment.factors.map((f) => f.detail) } };
    }
    const tokens = await app.devices.complete({ subjectId: principal._id, kind: principal.kind, role: principal.role, method, assessed });
    return { status: 200, body: tokens };
  }

  async function passwordOrCode(request: FastifyRequest, kind: Kind, body: { phone: string; password?: string | undefined; code?: string | undefined; deviceId?: string | undefined }) {
    if ((body.password === undefined) === (body.code === undefined)) {
      throw Errors.validation('Send either a password or a one-time code', { details: [{ path: '/body', message: 'exactly one of password, code is required' }] });
    }
    const phone = requirePhone(body.phone, config);
    await app.security.checkIp(request.ip);
    const ticket = await app.security.reserveAttempt(phone);
    await app.security.delay(ticket.delayMs);
    const principal = await findPrincipal(kind, phone);
    let ok: boolean;
    if (body.password !== undefined) {
      const usable = ticket.allowed && principal && principal.passwordHash && !principal.blocked;
      ok = usable ? await app.passwords.verify(principal.passwordHash!, body.password) : await app.passwords.verifyNothing(body.password);
    } else {
      // A locked number's code is not even checked (and so not spent).
      ok = ticket.allowed && await app.security.verifyCode(phone, 'sign-in', body.code!) && !!principal && principal.kind === 'subject' && principal.blocked === false;
    }
    if (!ok || !principal) return failed(request, ticket, principal, body.password !== undefined ? 'password' : 'code');
    await app.security.attemptSucceeded(ticket);
    const assessed = await app.devices.assess(principal._id, app.devices.signals(request, body.deviceId));
    // A one-time code already proved possession of the number: no further step.
    return proceed(request, principal, assessed, body.password !== undefined ? 'password' : 'code', body.code !== undefined);
  }

  const SignInBody = Type.Object({
    phone: PhoneInput,
    password: Type.Optional(PasswordInput),
    code: Type.Optional(CodeInput),
    deviceId: Type.Optional(DeviceIdInput),
  }, { additionalProperties: false });

  app.post('/public/sign-in', {
    schema: {
      tags: ['sign-in'], summary: 'Sign in with phone + password or phone + one-time code', body: SignInBody,
      response: { 200: TokenPairSchema, 202: ChallengeSchema, ...errors(400, 401, 415, 429, 503) },
    },
  }, async (request, reply) => {
    const out = await passwordOrCode(request, 'subject', request.body);
    return reply.code(out.status as 200).send(out.body as never);
  });

  app.post('/public/staff/sign-in', {
    schema: {
      tags: ['sign-in'], summary: 'Staff (operator, DPO) sign-in with phone + password',
      body: Type.Object({ phone: PhoneInput, password: PasswordInput, deviceId: Type.Optional(DeviceIdInput) }, { additionalProperties: false }),
      response: { 200: TokenPairSchema, 202: ChallengeSchema, ...errors(400, 401, 415, 429, 503) },
    },
  }, async (request, reply) => {
    const out = await passwordOrCode(request, 'staff', request.body);
    return reply.code(out.status as 200).send(out.body as never);
  });

  app.post('/public/sign-in/verify', {
    schema: {
      tags: ['sign-in'], summary: 'Complete a sign-in that needs a one-time code',
      body: Type.Object({ challengeId: Type.String({ pattern: '^chl_[0-9a-f]{32}$' }), code: CodeInput }, { additionalProperties: false }),
      response: { 200: TokenPairSchema, ...errors(400, 401, 415, 429, 503) },
    },
  }, async (request) => {
    const now = new Date();
    const ch = await app.models.challenges.findOne({ _id: request.body.challengeId, consumed: false, expiresAt: { $gt: now } }).lean();
    if (!ch) throw IdentityErrors.signInFailed('The sign-in expired or was already completed; sign in again');
    if (!await app.security.verifyCode(ch.phone, 'step-up', request.body.code)) {
      await app.devices.recordFailure(ch.subjectId, 'step-up', app.devices.signals(request));
      throw IdentityErrors.signInFailed();
    }
    const claimed = await app.models.challenges.findOneAndUpdate({ _id: ch._id, consumed: false }, { $set: { consumed: true } }).lean();
    if (!claimed) throw IdentityErrors.signInFailed('The sign-in expired or was already completed; sign in again');
    const principal = ch.kind === 'subject'
      ? await app.models.accounts.findOne({ _id: ch.subjectId }).select('+passwordHash').lean().then((a) => a && !subjectBlocked(a) ? { _id: a._id, kind: 'subject' as const, role: 'subject' as const, phone: a.phone } : null)
      : await app.models.staff.findOne({ _id: ch.subjectId, active: true }).lean().then((s) => s && { _id: s._id, kind: 'staff' as const, role: s.role, phone: s.phone });
    if (!principal) throw IdentityErrors.signInFailed();
    const assessed: Assessed = { assessment: { score: 0, factors: [] }, deviceKey: ch.deviceKey, label: ch.deviceLabel };
    // Keep the original assessment's factors on record; the session starts on the verified device.
    const original = await app.models.signIns.findById(ch.assessmentId).lean();
    if (original) assessed.assessment = { score: original.score, factors: original.factors as Assessed['assessment']['factors'] };
    return app.devices.complete({ subjectId: principal._id, kind: principal.kind, role: principal.role, method: 'step-up', assessed });
  });
};
export default signInRoutes;
