import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Config } from '../../config.js';
import { judgePassword } from '../../domain/password.js';
import { IdentityErrors } from '../../errors.js';
import { CodeInput, errors, PasswordInput, PhoneInput, SubjectIdParam, TokenPairSchema } from '../../schemas.js';
import { notErasedSince, requirePhone, requireProfileConsent, withdrawnMeanwhile } from '../helpers.js';

/**
 * Passwords (policy 2.4.1(1)ii optional login password; 5.4.1 complex passwords):
 * - `POST /v1/identity/public/password-strength` (anonymous): judges a candidate password (no storage).
 * - `POST /v1/identity/public/password-reset` (anonymous): phone + `password-reset` code + new password.
 *   204 whether or not the number has an account once the code is right; every session is ended.
 * - `PUT /v1/identity/subjects/:subjectId/password` (the subject): change or set the password after
 *   re-authentication (the current password, or a `reauth` code when none is set). Every session ends
 *   (`privacy.session.revoked`, password-changed) and a new one starts: 200 with its tokens.
 * Storing a password needs the subject's consent to purpose `profile` (the login password is optional
 * profile information, 2.4.1(1)ii): 403 PIPP_CONSENT_REQUIRED otherwise, 503 when consent cannot answer;
 * a reset refused so keeps its code usable for a retry.
 * Errors: 400 PIPP_WEAK_PASSWORD (clause 5.4.1, with suggestions), 400 PIPP_INVALID_CODE,
 * 403 PIPP_REAUTH_REQUIRED, 403 PIPP_CONSENT_REQUIRED.
 */
const passwordRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, opts) => {
  const { config } = opts;
  const judge = (password: string, userInputs: string[]) => {
    const verdict = judgePassword(password, { minScore: config.PASSWORD_MIN_SCORE, minLength: config.PASSWORD_MIN_LENGTH, userInputs });
    if (!verdict.ok) throw IdentityErrors.weakPassword(verdict.reason, { clause: '5.4.1', details: [{ path: '/body/newPassword', message: [verdict.reason, ...verdict.suggestions].join(' ') }] });
  };

  app.post('/public/password-strength', {
    schema: {
      tags: ['passwords'], summary: 'Estimate the strength of a candidate password',
      body: Type.Object({ password: PasswordInput }, { additionalProperties: false }),
      response: { 200: Type.Object({ acceptable: Type.Boolean(), score: Type.Integer({ minimum: 0, maximum: 4 }), reason: Type.Optional(Type.String()), suggestions: Type.Array(Type.String()) }, { additionalProperties: false }), ...errors(400, 415) },
    },
  }, async (request) => {
    const v = judgePassword(request.body.password, { minScore: config.PASSWORD_MIN_SCORE, minLength: config.PASSWORD_MIN_LENGTH });
    return v.ok ? { acceptable: true, score: v.score, suggestions: [] } : { acceptable: false, score: v.score, reason: v.reason, suggestions: v.suggestions };
  });

  app.post('/public/password-reset', {
    schema: {
      tags: ['passwords'], summary: 'Reset the password with a one-time code',
      body: Type.Object({ phone: PhoneInput, code: CodeInput, newPassword: PasswordInput }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...errors(400, 403, 415, 429, 503) },
    },
  }, async (request, reply) => {
    const phone = requirePhone(request.body.phone, config);
    judge(request.body.newPassword, [phone, phone.slice(-11)]);
    if (!await app.security.verifyCode(phone, 'password-reset', request.body.code)) throw IdentityErrors.invalidCode();
    // Only the number's holder gets here (the code): telling them its account needs consent reveals nothing new.
    const holder = await app.models.accounts.findOne({ phone, status: 'active' }, { _id: 1, profileGrantedAt: 1, profileErasedAt: 1 }).lean();
    if (holder) {
      // Refused for consent, the code stays usable: granting it, the holder retries with the same code.
      await requireProfileConsent(app, holder, ['credentials']).catch(async (err: unknown) => {
        await app.security.releaseCode(phone, 'password-reset');
        throw err;
      });
    }
    const hash = await app.passwords.hash(request.body.newPassword);
    const account = await app.models.accounts.findOneAndUpdate(
      { phone, status: 'active', ...notErasedSince(holder) },
      { $set: { passwordHash: hash, passwordSetAt: new Date(), mustResetPassword: false, updatedAt: new Date() } },
      { new: true },
    ).select('+passwordHash +_outbox').lean();
    if (holder && !account) {
      await app.security.releaseCode(phone, 'password-reset');
      throw withdrawnMeanwhile('the password');
    }
    if (account) {
      await app.sessions.revokeAll(account._id, 'password-changed');
      await app.audit.record(request, account._id, 'password-reset', ['password'], { role: 'subject', id: account._id });
    }
    return reply.code(204).send(null);
  });

  app.put('/subjects/:subjectId/password', {
    preHandler: app.requireSubject('subjectId', []),
    schema: {
      tags: ['passwords'], summary: 'Change or set the password (re-authentication required)', security: [{ bearer: [] }],
      params: SubjectIdParam,
      body: Type.Object({ currentPassword: Type.Optional(PasswordInput), code: Type.Optional(CodeInput), newPassword: PasswordInput }, { additionalProperties: false }),
      response: { 200: TokenPairSchema, ...errors(400, 401, 403, 404, 415, 429, 503) },
    },
  }, async (request) => {
    const { subjectId } = request.params;
    const account = await app.models.accounts.findOne({ _id: subjectId, status: 'active' }).select('+passwordHash').lean();
    if (!account) throw IdentityErrors.notFound('No such account');
    judge(request.body.newPassword, [account.phone, account.phone.slice(-11), account.profile?.nickname ?? '', account.profile?.accountName ?? '']);
    await requireProfileConsent(app, account, ['credentials']);
    await reauthenticate(app, account, request.body);
    const hash = await app.passwords.hash(request.body.newPassword);
    const stored = await app.models.accounts.updateOne({ _id: subjectId, status: 'active', ...notErasedSince(account) }, { $set: { passwordHash: hash, passwordSetAt: new Date(), mustResetPassword: false, updatedAt: new Date() } });
    if (!stored.matchedCount) throw withdrawnMeanwhile('the password');
    await app.sessions.revokeAll(subjectId, 'password-changed');
    await app.audit.record(request, subjectId, 'password-changed', ['password']);
    const assessed = await app.devices.assess(subjectId, app.devices.signals(request));
    return app.devices.complete({ subjectId, kind: 'subject', role: 'subject', method: 'password', assessed });
  });
};
export default passwordRoutes;

/**
 * Re-authentication of a signed-in subject before a sensitive change: the current password when the
 * account has one, otherwise a `reauth` code sent to the account's number.
 * @throws PIPP_REAUTH_REQUIRED (403) when neither proves it is them.
 */
export async function reauthenticate(app: import('fastify').FastifyInstance, account: { phone: string; passwordHash?: string }, body: { currentPassword?: string | undefined; code?: string | undefined }) {
  if (account.passwordHash && body.currentPassword !== undefined) {
    if (await app.passwords.verify(account.passwordHash, body.currentPassword)) return;
  } else if (body.code !== undefined) {
    if (await app.security.verifyCode(account.phone, 'reauth', body.code)) return;
  }
  throw IdentityErrors.reauthRequired(account.passwordHash
    ? 'Confirm with your current password (or a code from POST …/reauth-codes)'
    : 'Confirm with a code: request one with POST /v1/identity/subjects/{subjectId}/reauth-codes', { clause: '4.1.2' });
}
