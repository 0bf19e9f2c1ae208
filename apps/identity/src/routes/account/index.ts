import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Config } from '../../config.js';
import { IdentityErrors } from '../../errors.js';
import { errors, SubjectIdParam } from '../../schemas.js';
import { profileView } from '../profile/index.js';

const Rec = Type.Object({}, { additionalProperties: true });
const iso = (d: unknown) => (d instanceof Date ? d.toISOString() : d);
/** Plain JSON of a stored record: dates as ISO strings, hidden fields dropped. */
function plain(doc: Record<string, unknown>, drop: string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) {
    if (k.startsWith('_outbox') || drop.includes(k)) continue;
    out[k === '_id' ? 'id' : k] = Array.isArray(v) ? v.map((x) => (x && typeof x === 'object' && !(x instanceof Date) ? plain(x as Record<string, unknown>) : iso(x))) : v && typeof v === 'object' && !(v instanceof Date) ? plain(v as Record<string, unknown>) : iso(v);
  }
  return out;
}

/**
 * Account settings (policy 4.1 inquire; 4.1.2 query account information; PIPL art. 45 copy, 44 know):
 * - `GET /v1/identity/subjects/:subjectId/export`: everything identity holds about the subject, as one
 *   machine-readable JSON document (`format: pipp-identity-export/1`): account and profile, the
 *   acknowledged policy, password metadata (never the hash), sessions, devices, sign-in risk history,
 *   activity log, leak reports, the audit trail, and records kept by law. The subject, or an
 *   operator/DPO (audited).
 * - `GET …/audit`: who changed or read what in the account, newest first.
 * - `GET …/sign-ins`: sign-in history with each risk score and its factors (2.4.1(3)).
 */
const accountRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app) => {
  app.get('/subjects/:subjectId/export', {
    preHandler: app.requireSubject(),
    schema: {
      tags: ['account'], summary: 'Export everything identity holds about the subject', security: [{ bearer: [] }], params: SubjectIdParam,
      response: {
        200: Type.Object({
          format: Type.Literal('pipp-identity-export/1'), generatedAt: Type.String({ format: 'date-time' }), subjectId: Type.String(),
          account: Rec, credentials: Rec, sessions: Type.Array(Rec), devices: Type.Array(Rec), signIns: Type.Array(Rec),
          activity: Type.Array(Rec), leakReports: Type.Array(Rec), audit: Type.Array(Rec), keptByLaw: Type.Array(Rec),
        }, { additionalProperties: false }),
        ...errors(401, 403, 404),
      },
    },
  }, async (request) => {
    const { subjectId } = request.params;
    const m = app.models;
    const a = await m.accounts.findOne({ _id: subjectId, status: 'active' }).select('+passwordHash').lean();
    if (!a) throw IdentityErrors.notFound('No such account');
    await app.audit.recordAccess(request, subjectId, 'export');
    const [sessions, devices, signIns, activity, audit, holds] = await Promise.all([
      m.sessions.find({ subjectId }).lean(), m.devices.find({ subjectId }).lean(), m.signIns.find({ subjectId }).sort({ at: -1 }).lean(),
      m.activity.find({ subjectId }).sort({ at: -1 }).lean(), m.audit.find({ subjectId }).sort({ at: -1 }).lean(),
      m.legalHolds.find({ subjectId }, { data: 0 }).lean(),
    ]);
    return {
      format: 'pipp-identity-export/1' as const,
      generatedAt: new Date().toISOString(),
      subjectId,
      account: profileView(a),
      credentials: { hasPassword: !!a.passwordHash, passwordSetAt: iso(a.passwordSetAt) ?? null, mustResetPassword: !!a.mustResetPassword },
      sessions: sessions.map((s) => plain(s as never, ['refreshHash', 'previous'])),
      devices: devices.map((d) => plain(d as never)),
      signIns: signIns.map((s) => plain(s as never)),
      activity: activity.map((x) => plain(x as never)),
      leakReports: (a.leakReports ?? []).map((r) => plain(r as never)),
      audit: audit.map((x) => plain(x as never)),
      // What is kept and on which legal basis, without the hold's evidence (a police request or case
      // number is for staff: retention's subject views leave it out too).
      keptByLaw: holds.map((h) => plain(h as never, ['evidenceRef'])),
    };
  });

  app.get('/subjects/:subjectId/audit', {
    preHandler: app.requireSubject(),
    schema: {
      tags: ['account'], summary: "The account's audit trail", security: [{ bearer: [] }], params: SubjectIdParam,
      querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ records: Type.Array(Type.Object({ id: Type.String(), at: Type.String(), actor: Type.Object({ role: Type.String(), id: Type.String() }), action: Type.String(), fields: Type.Array(Type.String()), reason: Type.Optional(Type.String()) })) }), ...errors(401, 403) },
    },
  }, async (request) => {
    await app.audit.recordAccess(request, request.params.subjectId, 'audit');
    const rows = await app.models.audit.find({ subjectId: request.params.subjectId }).sort({ at: -1 }).limit(request.query.limit).lean();
    return { records: rows.map((r) => ({ id: r._id, at: r.at.toISOString(), actor: r.actor, action: r.action, fields: r.fields, ...(r.reason ? { reason: r.reason } : {}) })) };
  });

  app.get('/subjects/:subjectId/sign-ins', {
    preHandler: app.requireSubject(),
    schema: {
      tags: ['devices'], summary: 'Sign-in history with explained risk scores', security: [{ bearer: [] }], params: SubjectIdParam,
      querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ signIns: Type.Array(Type.Object({
        id: Type.String(), at: Type.String(), outcome: Type.String(), method: Type.String(), score: Type.Integer(),
        factors: Type.Array(Type.Object({ factor: Type.String(), points: Type.Integer(), detail: Type.String() })),
        deviceId: Type.Optional(Type.String()), ipPrefix: Type.Optional(Type.String()), retentionUntil: Type.String(),
      })) }), ...errors(401, 403) },
    },
  }, async (request) => {
    await app.audit.recordAccess(request, request.params.subjectId, 'sign-ins');
    const rows = await app.models.signIns.find({ subjectId: request.params.subjectId }).sort({ at: -1 }).limit(request.query.limit).lean();
    return { signIns: rows.map((r) => ({
      id: r._id, at: r.at.toISOString(), outcome: r.outcome, method: r.method, score: r.score, factors: r.factors,
      ...(r.deviceId ? { deviceId: r.deviceId } : {}), ...(r.ipPrefix ? { ipPrefix: r.ipPrefix } : {}), retentionUntil: app.retentionPeriods.until('device-info', r.at).toISOString(),
    })) };
  });
};
export default accountRoutes;
