import type {} from '@fastify/jwt';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ErrorResponseSchema, PurposeId, RoleSchema, SubjectId } from '@pipp/contracts';
import { Errors } from '@pipp/service-kit';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { FilterQuery } from 'mongoose';
import { AUDIT_OUTCOMES, type AuditRecord } from '../../domain/audit.js';

const Outcome = Type.Union(AUDIT_OUTCOMES.map((o) => Type.Literal(o)));
const ActorRole = Type.Union([RoleSchema, Type.Literal('anonymous')]);

/** One audit record as the API shows it (ids only, never PI in clear). */
const AuditRecordDto = Type.Object({
  id: Type.String(),
  at: Type.String({ format: 'date-time' }),
  requestId: Type.String(),
  actor: Type.Object({ role: ActorRole, sub: Type.Optional(Type.String()), sid: Type.Optional(Type.String()) }),
  subjectId: Type.Optional(Type.String()),
  service: Type.String(),
  method: Type.String(),
  route: Type.String(),
  pathClass: Type.String(),
  purpose: Type.Optional(Type.String()),
  legalBasis: Type.Optional(Type.String()),
  outcome: Outcome,
  status: Type.Integer(),
  code: Type.Optional(Type.String()),
  durationMs: Type.Number({ description: 'ms' }),
}, { additionalProperties: false });

const Page = Type.Object({
  records: Type.Array(AuditRecordDto),
  nextCursor: Type.Optional(Type.String({ description: 'Pass as `cursor` for the next (older) page' })),
}, { additionalProperties: false });

const Cursor = Type.String({ pattern: '^[A-Za-z0-9_-]{1,200}$', description: 'Opaque cursor from nextCursor' });
const Paging = {
  from: Type.Optional(Type.String({ format: 'date-time', description: 'Records at or after (ISO 8601)' })),
  to: Type.Optional(Type.String({ format: 'date-time', description: 'Records before (ISO 8601)' })),
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
  cursor: Type.Optional(Cursor),
};

const DpoQuery = Type.Object({
  subjectId: Type.Optional(SubjectId),
  actorSub: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:-]+$' })),
  actorRole: Type.Optional(ActorRole),
  service: Type.Optional(Type.String({ pattern: '^[a-z-]{1,32}$' })),
  outcome: Type.Optional(Outcome),
  purpose: Type.Optional(PurposeId),
  ...Paging,
}, { additionalProperties: false });

const SubjectQuery = Type.Object({ ...Paging }, { additionalProperties: false });

const errors = { 400: ErrorResponseSchema, 401: ErrorResponseSchema, 403: ErrorResponseSchema, 429: ErrorResponseSchema, 503: ErrorResponseSchema };

function encodeCursor(r: Pick<AuditRecord, 'at' | '_id'>): string {
  return Buffer.from(`${r.at.toISOString()}|${r._id}`).toString('base64url');
}

function decodeCursor(cursor: string): { at: Date; id: string } {
  const [at, id] = Buffer.from(cursor, 'base64url').toString().split('|');
  const date = new Date(at ?? '');
  if (!id || Number.isNaN(date.getTime())) throw Errors.validation('The cursor is invalid', { details: [{ path: '/querystring/cursor', message: 'is not a cursor from nextCursor' }] });
  return { at: date, id };
}

/**
 * The audit trail, for the DPO (issue: "an audit record … that the DPO can query") and for each data
 * subject about their own data (who reached it, for what purpose; PIPL art. 44/45 right to know).
 * Reading the trail is itself audited (these routes are under subjects/ and admin/).
 */
export default async function auditRecordRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const model = app.audit.model;

  async function page(filter: FilterQuery<AuditRecord>, q: Static<typeof SubjectQuery>, view: 'dpo' | 'subject') {
    const and: FilterQuery<AuditRecord>[] = [filter];
    if (q.from) and.push({ at: { $gte: new Date(q.from) } });
    if (q.to) and.push({ at: { $lt: new Date(q.to) } });
    if (q.cursor) {
      const c = decodeCursor(q.cursor);
      and.push({ $or: [{ at: { $lt: c.at } }, { at: c.at, _id: { $lt: c.id } }] });
    }
    const rows = await model.find({ $and: and }).sort({ at: -1, _id: -1 }).limit(q.limit + 1).lean();
    const more = rows.length > q.limit;
    const records = rows.slice(0, q.limit).map((r) => ({
      id: r._id,
      at: r.at.toISOString(),
      requestId: r.requestId,
      // A subject sees the role of whoever reached their data, not staff account ids.
      actor: view === 'dpo' || r.actor.sub === r.subjectId ? r.actor : { role: r.actor.role },
      ...(r.subjectId ? { subjectId: r.subjectId } : {}),
      service: r.service,
      method: r.method,
      route: r.route,
      pathClass: r.pathClass,
      ...(r.purpose ? { purpose: r.purpose } : {}),
      ...(r.legalBasis ? { legalBasis: r.legalBasis } : {}),
      outcome: r.outcome,
      status: r.status,
      ...(r.code ? { code: r.code } : {}),
      durationMs: r.durationMs,
    }));
    const last = rows[q.limit - 1];
    return { records, ...(more && last ? { nextCursor: encodeCursor(last) } : {}) };
  }

  /**
   * GET /v1/gateway/admin/audit-records — DPO only. Filters: subjectId, actorSub, actorRole, service,
   * outcome, purpose, from/to (ISO 8601); newest first, `limit` (1–500) per page with a cursor.
   * Errors: 400 invalid filter or cursor, 401, 403 (not the DPO).
   */
  app.get('/admin/audit-records', {
    preHandler: app.requireRole('dpo'),
    schema: {
      summary: 'Query the audit trail (DPO)',
      'x-pipp-roles': ['dpo'],
      querystring: DpoQuery,
      response: { 200: Page, ...errors },
    } as never,
  }, async (request) => {
    const q = request.query as Static<typeof DpoQuery>;
    const filter: FilterQuery<AuditRecord> = {};
    if (q.subjectId) filter.subjectId = q.subjectId;
    if (q.actorSub) filter['actor.sub'] = q.actorSub;
    if (q.actorRole) filter['actor.role'] = q.actorRole;
    if (q.service) filter.service = q.service;
    if (q.outcome) filter.outcome = q.outcome;
    if (q.purpose) filter.purpose = q.purpose;
    return page(filter, q, 'dpo');
  });

  /**
   * GET /v1/gateway/subjects/:subjectId/audit-records — the data subject themself or the DPO: every
   * recorded access to this subject's data (actor role, route, purpose, outcome, time). Staff account
   * ids are shown to the DPO only. Errors: 401, 403 (another subject's records), 400.
   */
  app.get('/subjects/:subjectId/audit-records', {
    preHandler: app.requireSubject('subjectId', ['dpo']),
    schema: {
      summary: "Who reached this data subject's data, and why",
      'x-pipp-roles': ['subject', 'dpo'],
      params: Type.Object({ subjectId: SubjectId }, { additionalProperties: false }),
      querystring: SubjectQuery,
      response: { 200: Page, ...errors },
    } as never,
  }, async (request) => {
    const { subjectId } = request.params as { subjectId: string };
    return page({ subjectId }, request.query as Static<typeof SubjectQuery>, request.user.role === 'dpo' ? 'dpo' : 'subject');
  });
}
