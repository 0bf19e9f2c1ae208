import { VisibleText } from '@pipp/contracts';
import { Errors } from '@pipp/service-kit';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Config } from '../../config.js';
import { normalizeText } from '../../domain/profile.js';
import { IdentityErrors } from '../../errors.js';
import { newId } from '../../plugins/keys.js';
import { errors, SubjectIdParam } from '../../schemas.js';

/**
 * `POST /v1/identity/subjects/:subjectId/leak-reports` (policy 5.4.1: "if you find that your account
 * number or password is leaked, contact customer service so we can take measures"): the subject, or
 * an operator/DPO acting as support. In one account write: a password reset is forced when the account
 * has a password (every sign-in fails until a reset with a code; an account without one keeps signing
 * in by one-time code), the report is recorded, and its events are queued: every
 * token of the subject is revoked (`privacy.session.revoked`, leak-reported, subject-wide) and
 * `privacy.account.leak-reported` lets the incident service open a user report. Every session is also
 * ended one by one. 201 `{reportId, sessionsRevoked, passwordResetRequired}`.
 */
const leakRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app) => {
  app.post('/subjects/:subjectId/leak-reports', {
    preHandler: app.requireSubject(),
    schema: {
      tags: ['account'], summary: 'Report the account as compromised', security: [{ bearer: [] }], params: SubjectIdParam,
      body: Type.Object({ description: Type.Optional(VisibleText(2000)) }, { additionalProperties: false }),
      response: { 201: Type.Object({ reportId: Type.String(), sessionsRevoked: Type.Integer(), passwordResetRequired: Type.Boolean() }), ...errors(400, 401, 403, 404, 415) },
    },
  }, async (request, reply) => {
    const { subjectId } = request.params;
    let description: string | undefined;
    if (request.body.description !== undefined) {
      const v = normalizeText(request.body.description, 2000);
      if (!v.ok) throw Errors.validation(`description ${v.reason}`, { details: [{ path: '/body/description', message: v.reason }] });
      description = v.value;
    }
    const now = new Date();
    const reportId = newId('lrp');
    // A password must be replaced before it works again; an account without one (sign-in by one-time
    // code only) keeps signing in by code, or a leak report would lock its owner out for good.
    const hasPassword = !!(await app.models.accounts.findById(subjectId).select('+passwordHash').lean())?.passwordHash;
    const reportedBy = request.user.role === 'subject' ? 'subject' as const : 'support' as const;
    // Subject-wide: every token issued up to now (iat floored to seconds) is rejected everywhere.
    const notBefore = new Date(Math.ceil(now.getTime() / 1000) * 1000).toISOString();
    const updated = await app.outbox.update(app.models.accounts, { _id: subjectId, status: 'active' }, {
      $set: { mustResetPassword: hasPassword, updatedAt: now },
      $push: { leakReports: { reportId, reportedBy, actorId: request.user.sub, ...(description ? { description } : {}), at: now } },
    }, [
      app.outbox.entry('privacy.session.revoked', { subject: subjectId, payload: { subjectId, notBefore, reason: 'leak-reported' } }),
      app.outbox.entry('privacy.account.leak-reported', {
        subject: subjectId, correlationId: reportId,
        payload: { subjectId, reportId, reportedBy, ...(description ? { description } : {}), reportedAt: now.toISOString(), passwordResetRequired: hasPassword },
      }),
    ]);
    if (!updated) throw IdentityErrors.notFound('No such account');
    app.revocations.apply({ subjectId, notBefore });
    const sessionsRevoked = await app.sessions.revokeAll(subjectId, 'leak-reported');
    await app.audit.record(request, subjectId, 'leak-reported', ['session', 'credentials']);
    return reply.code(201).send({ reportId, sessionsRevoked, passwordResetRequired: hasPassword });
  });
};
export default leakRoutes;
