import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { Errors } from '@pipp/service-kit';
import { canTransition, REPORT_KIND_CLAUSE, statusAfterReply, type ReportStatus } from '../../domain/reports.js';
import type { Config } from '../../config.js';
import { pseudonymOf, storeUnlessErased } from '../../domain/erasure.js';
import { IncidentErrors } from '../../errors.js';
import type { Report } from '../../plugins/models.js';
import { toReport } from '../views.js';
import { Cursor, IdParams, Limit, Page, ReportKindSchema, ReportSchema, ReportStatusSchema, SubjectParams, SubjectReportParams, Text, errors } from '../schemas.js';

const ReplyBody = Type.Object({ text: Text(4000) }, { additionalProperties: false });

/**
 * User reports (policy 5.4.1 account leaks, 2.2 complaints and results that missed expectations
 * because of wrong information, preamble questions), with status, replies and resolution:
 * - `POST|GET /subjects/:subjectId/reports[/:reportId]`, `POST …/:reportId/replies`: the subject
 *   (their own), or support (operator, dpo) acting for them (audited);
 * - `GET /admin/reports[/:id]`, `POST /admin/reports/:id/replies`, `PATCH /admin/reports/:id`:
 *   support's queue, replies, status and resolution (operator, dpo; audited).
 * Leak reports made at identity arrive as `privacy.account.leak-reported` events and appear here too.
 */
export default async function reportRoutes(fastify: FastifyInstance, opts: { config: Config }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const m = app.models;
  const erased = (subjectId: string) => () => m.erased.exists({ _id: pseudonymOf(subjectId, opts.config.INCIDENT_PSEUDONYM_KEY) });
  const staff = app.requireRole('operator', 'dpo');
  const own = app.requireSubject('subjectId');
  const isStaff = (r: FastifyRequest) => r.user.role === 'operator' || r.user.role === 'dpo';

  const loadOwn = async (subjectId: string, reportId: string) => {
    const r = await m.reports.findOne({ _id: reportId, subjectId }).lean();
    if (!r) throw IncidentErrors.reportNotFound(`No report ${reportId}`);
    return r;
  };
  const reply = async (request: FastifyRequest, r: Report, text: string, by: 'subject' | 'support', extra: { status?: ReportStatus } = {}) => {
    const after = statusAfterReply(r.status, by);
    if (after === 'refused') throw IncidentErrors.reportClosed('A closed report takes no replies; open a new one', { clause: REPORT_KIND_CLAUSE[r.kind] });
    let status = after;
    if (extra.status && extra.status !== status) {
      if (!canTransition(status, extra.status)) throw IncidentErrors.badTransition(`A report cannot go from ${status} to ${extra.status}`);
      status = extra.status;
    }
    const now = new Date();
    const updated = await m.reports.findOneAndUpdate({ _id: r._id, status: r.status }, {
      $push: { replies: { id: `rpl_${randomUUID()}`, at: now, by, actor: request.user.sub, text } }, $set: { status, updatedAt: now },
    }, { new: true }).lean();
    if (!updated) throw IncidentErrors.badTransition('The report changed meanwhile; read it again and retry');
    await app.audit(request, 'report.replied', { type: 'report', id: r._id }, { subjectId: r.subjectId });
    return updated;
  };

  app.post('/subjects/:subjectId/reports', {
    preHandler: own,
    schema: {
      tags: ['reports'], summary: 'Open a report: account leak (5.4.1), question, complaint or wrong information (2.2)', params: SubjectParams,
      body: Type.Object({ kind: ReportKindSchema, title: Text(200), text: Text(8000) }, { additionalProperties: false }),
      response: { 201: ReportSchema, ...errors(400, 401, 403, 409) },
    },
  }, async (request, reply_) => {
    const now = new Date();
    const doc: Report = {
      _id: `rep_${randomUUID()}`, subjectId: request.params.subjectId, kind: request.body.kind, status: 'open', title: request.body.title,
      text: request.body.text, replies: [], openedBy: isStaff(request) ? 'support' : 'subject', createdAt: now, updatedAt: now,
    };
    // A report racing the subject's erasure is not kept (409, nothing stored).
    if (!await storeUnlessErased(erased(doc.subjectId!), () => m.reports.create(doc), () => m.reports.deleteOne({ _id: doc._id }))) throw IncidentErrors.subjectErased();
    await app.audit(request, 'report.opened', { type: 'report', id: doc._id }, { subjectId: doc.subjectId });
    return reply_.code(201).send(toReport(doc));
  });

  app.get('/subjects/:subjectId/reports', {
    preHandler: own,
    schema: { tags: ['reports'], summary: "A subject's reports, newest first", params: SubjectParams, querystring: Type.Object({ limit: Limit }, { additionalProperties: false }), response: { 200: Type.Array(ReportSchema), ...errors(400, 401, 403) } },
  }, async (request) => {
    const docs = await m.reports.find({ subjectId: request.params.subjectId }).sort({ createdAt: -1 }).limit(request.query.limit).lean();
    if (isStaff(request)) await app.audit(request, 'subject.reports-read', { type: 'subject', id: request.params.subjectId }, { subjectId: request.params.subjectId });
    return docs.map(toReport);
  });

  app.get('/subjects/:subjectId/reports/:reportId', {
    preHandler: own,
    schema: { tags: ['reports'], summary: 'One of a subject\'s reports', params: SubjectReportParams, response: { 200: ReportSchema, ...errors(400, 401, 403, 404) } },
  }, async (request) => {
    const r = await loadOwn(request.params.subjectId, request.params.reportId);
    if (isStaff(request)) await app.audit(request, 'report.read', { type: 'report', id: r._id }, { subjectId: r.subjectId });
    return toReport(r);
  });

  app.post('/subjects/:subjectId/reports/:reportId/replies', {
    preHandler: own,
    schema: { tags: ['reports'], summary: 'Reply on a report', params: SubjectReportParams, body: ReplyBody, response: { 201: ReportSchema, ...errors(400, 401, 403, 404, 409) } },
  }, async (request, reply_) => {
    const r = await loadOwn(request.params.subjectId, request.params.reportId);
    return reply_.code(201).send(toReport(await reply(request, r, request.body.text, isStaff(request) ? 'support' : 'subject')));
  });

  app.get('/admin/reports', {
    preHandler: staff,
    schema: {
      tags: ['reports'], summary: 'Support queue: reports by status and kind, oldest first',
      querystring: Type.Object({ status: Type.Optional(ReportStatusSchema), kind: Type.Optional(ReportKindSchema), limit: Limit, cursor: Type.Optional(Cursor) }, { additionalProperties: false }),
      response: { 200: Page(ReportSchema), ...errors(400, 401, 403) },
    },
  }, async (request) => {
    const { status, kind, limit, cursor } = request.query;
    const filter: Record<string, unknown> = { anonymized: { $ne: true } };
    if (status) filter.status = status;
    if (kind) filter.kind = kind;
    if (cursor) filter._id = { $gt: cursor };
    const docs = await m.reports.find(filter).sort({ _id: 1 }).limit(limit + 1).lean();
    const items = docs.slice(0, limit).map(toReport);
    await app.audit(request, 'reports.listed', { type: 'reports', id: status ?? 'all' });
    return { items, next: docs.length > limit ? items[items.length - 1]!.id : null };
  });

  const loadAny = async (id: string) => {
    const r = await m.reports.findById(id).lean();
    if (!r) throw IncidentErrors.reportNotFound(`No report ${id}`);
    return r;
  };

  app.get('/admin/reports/:id', {
    preHandler: staff,
    schema: { tags: ['reports'], summary: 'One report', params: IdParams, response: { 200: ReportSchema, ...errors(400, 401, 403, 404) } },
  }, async (request) => {
    const r = await loadAny(request.params.id);
    await app.audit(request, 'report.read', { type: 'report', id: r._id }, { subjectId: r.subjectId });
    return toReport(r);
  });

  app.post('/admin/reports/:id/replies', {
    preHandler: staff,
    schema: {
      tags: ['reports'], summary: 'Support replies (and may set the status)', params: IdParams,
      body: Type.Object({ text: Text(4000), status: Type.Optional(ReportStatusSchema) }, { additionalProperties: false }),
      response: { 201: ReportSchema, ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request, reply_) => {
    const r = await loadAny(request.params.id);
    return reply_.code(201).send(toReport(await reply(request, r, request.body.text, 'support', request.body.status ? { status: request.body.status } : {})));
  });

  app.patch('/admin/reports/:id', {
    preHandler: staff,
    schema: {
      tags: ['reports'], summary: 'Change the status or record the resolution', params: IdParams,
      body: Type.Object({ status: Type.Optional(ReportStatusSchema), resolution: Type.Optional(Text(4000)) }, { additionalProperties: false, minProperties: 1 }),
      response: { 200: ReportSchema, ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request) => {
    const r = await loadAny(request.params.id);
    const { status, resolution } = request.body;
    if (r.status === 'closed') throw IncidentErrors.reportClosed('A closed report cannot change', { clause: REPORT_KIND_CLAUSE[r.kind] });
    if (status && status !== r.status && !canTransition(r.status, status)) throw IncidentErrors.badTransition(`A report cannot go from ${r.status} to ${status}`);
    if (status === 'resolved' && !resolution && !r.resolution) {
      throw Errors.validation('Record the resolution when resolving a report', { clause: REPORT_KIND_CLAUSE[r.kind], details: [{ path: '/body/resolution', message: 'is required to resolve a report' }] });
    }
    const set: Record<string, unknown> = { updatedAt: new Date() };
    if (status) set.status = status;
    if (resolution) set.resolution = resolution;
    const updated = await m.reports.findOneAndUpdate({ _id: r._id, status: r.status }, { $set: set }, { new: true }).lean();
    if (!updated) throw IncidentErrors.badTransition('The report changed meanwhile; read it again and retry');
    await app.audit(request, 'report.updated', { type: 'report', id: r._id }, { subjectId: r.subjectId, fields: Object.keys(request.body).sort() });
    return toReport(updated);
  });
}
