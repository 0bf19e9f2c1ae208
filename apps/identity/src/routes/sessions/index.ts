import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Config } from '../../config.js';
import { IdentityErrors } from '../../errors.js';
import { errors, SubjectIdParam } from '../../schemas.js';

const SessionView = Type.Object({
  sessionId: Type.String(), current: Type.Boolean(), active: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }), lastUsedAt: Type.String({ format: 'date-time' }), expiresAt: Type.String({ format: 'date-time' }),
  revokedAt: Type.Optional(Type.String({ format: 'date-time' })), revokeReason: Type.Optional(Type.String()),
  deviceId: Type.Optional(Type.String()), userAgent: Type.Optional(Type.String()), ipPrefix: Type.Optional(Type.String()),
}, { additionalProperties: false });

/**
 * A subject's sessions (policy 4.1.2 account settings; 5.4.1 account security):
 * - `GET /v1/identity/subjects/:subjectId/sessions`: every session (active and recently ended) with its
 *   device; the subject, or an operator/DPO (audited).
 * - `DELETE …/sessions/:sessionId`: ends one (the subject, or staff: revoked-by-operator). 204; 404.
 * - `DELETE …/sessions?keepCurrent=true`: ends all (optionally but the caller's own). 200 `{revoked}`.
 * - `POST …/reauth-codes`: sends a `reauth` code to the account's number (re-authentication). 202.
 */
const sessionRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app) => {
  const iso = (d?: Date) => (d ? d.toISOString() : undefined);
  const reasonFor = (role: string) => (role === 'subject' ? 'revoked-by-subject' as const : 'revoked-by-operator' as const);

  app.get('/subjects/:subjectId/sessions', {
    preHandler: app.requireSubject(),
    schema: { tags: ['sessions'], summary: "List a subject's sessions", security: [{ bearer: [] }], params: SubjectIdParam, response: { 200: Type.Object({ sessions: Type.Array(SessionView) }), ...errors(401, 403) } },
  }, async (request) => {
    const { subjectId } = request.params;
    await app.audit.recordAccess(request, subjectId, 'sessions');
    const list = await app.models.sessions.find({ subjectId }).sort({ lastUsedAt: -1 }).limit(200).lean();
    return {
      sessions: list.map((s) => ({
        sessionId: s._id, current: s._id === request.user.sid, active: s.active && s.expiresAt > new Date(),
        createdAt: iso(s.createdAt)!, lastUsedAt: iso(s.lastUsedAt)!, expiresAt: iso(s.expiresAt)!,
        ...(s.revokedAt ? { revokedAt: iso(s.revokedAt)!, revokeReason: s.revokeReason } : {}),
        ...(s.deviceId ? { deviceId: s.deviceId } : {}), ...(s.userAgent ? { userAgent: s.userAgent } : {}), ...(s.ipPrefix ? { ipPrefix: s.ipPrefix } : {}),
      })),
    };
  });

  app.delete('/subjects/:subjectId/sessions/:sessionId', {
    preHandler: app.requireSubject(),
    schema: {
      tags: ['sessions'], summary: 'End one session', security: [{ bearer: [] }],
      params: Type.Object({ subjectId: SubjectIdParam.properties.subjectId, sessionId: Type.String({ pattern: '^ses_[0-9a-f]{32}$' }) }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...errors(401, 403, 404) },
    },
  }, async (request, reply) => {
    const { subjectId, sessionId } = request.params;
    if (!await app.sessions.revoke(subjectId, sessionId, reasonFor(request.user.role))) throw IdentityErrors.notFound('No such active session');
    await app.audit.record(request, subjectId, 'session-revoked', ['session']);
    return reply.code(204).send(null);
  });

  app.delete('/subjects/:subjectId/sessions', {
    preHandler: app.requireSubject(),
    schema: {
      tags: ['sessions'], summary: 'End every session', security: [{ bearer: [] }], params: SubjectIdParam,
      querystring: Type.Object({ keepCurrent: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
      response: { 200: Type.Object({ revoked: Type.Integer() }), ...errors(401, 403) },
    },
  }, async (request) => {
    const { subjectId } = request.params;
    const keep = request.query.keepCurrent && request.user.sub === subjectId ? request.user.sid : undefined;
    const revoked = await app.sessions.revokeAll(subjectId, reasonFor(request.user.role), keep);
    await app.audit.record(request, subjectId, 'sessions-revoked', ['session']);
    return { revoked };
  });

  app.post('/subjects/:subjectId/reauth-codes', {
    preHandler: app.requireSubject('subjectId', []),
    schema: {
      tags: ['sessions'], summary: 'Send a re-authentication code to the account number', security: [{ bearer: [] }], params: SubjectIdParam,
      response: { 202: Type.Object({ status: Type.Literal('sent'), expiresIn: Type.Integer(), resendAfter: Type.Integer() }), ...errors(401, 403, 404, 429) },
    },
  }, async (request, reply) => {
    const account = await app.models.accounts.findOne({ _id: request.params.subjectId, status: 'active' }, { phone: 1 }).lean();
    if (!account) throw IdentityErrors.notFound('No such account');
    const sent = await app.security.issueCode(account.phone, 'reauth', request.ip);
    return reply.code(202).send({ status: 'sent' as const, ...sent });
  });
};
export default sessionRoutes;
