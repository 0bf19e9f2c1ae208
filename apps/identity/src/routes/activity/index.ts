import { Errors } from '@pipp/service-kit';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Config } from '../../config.js';
import { normalizeText } from '../../domain/profile.js';
import { IdentityErrors } from '../../errors.js';
import { newId } from '../../plugins/keys.js';
import { errors, SubjectIdParam } from '../../schemas.js';

/** Function ids whose shutdown (policy 2.4.2(5)) stops activity logging. */
export const ACTIVITY_FUNCTIONS = ['personalization', 'activity-log'];

const ActivityView = Type.Object({
  id: Type.String(), kind: Type.String(), at: Type.String(), target: Type.Optional(Type.String()), query: Type.Optional(Type.String()),
  action: Type.Optional(Type.String()), retentionUntil: Type.String(),
}, { additionalProperties: false });

/**
 * Activity logs (policy 2.4.1(2): browsing, search records and usage logs for personalized service
 * information; an additional function, 2.1.2):
 * - `POST /v1/identity/subjects/:subjectId/activity` (the subject's app, or a service): records one
 *   event only if the consent service allows purpose `personalization` for category `activity-log`
 *   now (decision API through @pipp/consent-client). 201; 403 PIPP_CONSENT_REQUIRED (clause
 *   2.4.1(2)) when not, storing nothing; 403 PIPP_FUNCTION_SHUT_DOWN (2.4.2(5)); 503 when consent
 *   cannot answer (fails closed).
 * - `GET …/activity` (the subject, or an operator/DPO, audited); `DELETE …/activity/:activityId` and
 *   `DELETE …/activity` (the subject): delete entries. Entries expire after the retention service's
 *   period for `activity-log` (ACTIVITY_RETENTION_DAYS until it has sent one; RetentionPeriods);
 *   a withdrawal of the consent deletes them all (PIPL art. 47).
 */
const activityRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app) => {

  app.post('/subjects/:subjectId/activity', {
    preHandler: app.requireSubject('subjectId', ['service']),
    schema: {
      tags: ['activity'], summary: 'Record a browsing, search or usage event (needs consent)', security: [{ bearer: [] }], params: SubjectIdParam,
      // The function it collects for: the gateway refuses collection at the edge once it is shut down (2.4.2(5)).
      'x-pipp-function': 'personalization',
      body: Type.Object({
        kind: Type.Union([Type.Literal('browse'), Type.Literal('search'), Type.Literal('usage')]),
        target: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
        query: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
        action: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
      }, { additionalProperties: false }),
      response: { 201: Type.Object({ id: Type.String(), basis: Type.Object({ kind: Type.String(), consentRecordId: Type.Optional(Type.String()) }) }), ...errors(400, 401, 403, 415, 503) },
    },
  }, async (request, reply) => {
    const { subjectId } = request.params;
    const body = request.body;
    const shut = await app.models.shutdowns.findOne({ _id: { $in: ACTIVITY_FUNCTIONS }, effectiveAt: { $lte: new Date() } }).lean();
    if (shut) throw IdentityErrors.functionShutDown(`Activity logging was shut down (${shut.title}); nothing is collected for it any more`, { clause: '2.4.2(5)' });
    const fields: Record<string, string> = {};
    for (const f of ['target', 'query', 'action'] as const) {
      const v = body[f];
      if (v === undefined) continue;
      const n = normalizeText(v, 512);
      if (!n.ok) throw Errors.validation(`${f} ${n.reason}`, { details: [{ path: `/body/${f}`, message: n.reason }] });
      fields[f] = n.value;
    }
    if (!await app.models.accounts.exists({ _id: subjectId, status: 'active' })) throw IdentityErrors.notFound('No such account');
    const decision = await app.consent.decide({ subjectId, service: 'identity', purpose: 'personalization', categories: ['activity-log'], functionId: 'personalization' });
    if (!decision.allowed) {
      throw IdentityErrors.consentRequired(`Activity is recorded only with your consent to personalization: ${decision.reason}`, { clause: decision.clause === 'VI' ? 'VI' : '2.4.1(2)' });
    }
    const basis = decision.basis?.kind === 'consent' ? { kind: 'consent', consentRecordId: decision.basis.consentRecordId } : { kind: decision.basis?.kind ?? 'unknown' };
    const now = new Date();
    const id = newId('act');
    await app.models.activity.create({ _id: id, subjectId, kind: body.kind, at: now, ...fields, basis, retentionUntil: app.retentionPeriods.until('activity-log', now) });
    return reply.code(201).send({ id, basis });
  });

  app.get('/subjects/:subjectId/activity', {
    preHandler: app.requireSubject(),
    schema: {
      tags: ['activity'], summary: "List a subject's activity log", security: [{ bearer: [] }], params: SubjectIdParam,
      querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }), before: Type.Optional(Type.String({ format: 'date-time' })) }, { additionalProperties: false }),
      response: { 200: Type.Object({ entries: Type.Array(ActivityView) }), ...errors(401, 403) },
    },
  }, async (request) => {
    await app.audit.recordAccess(request, request.params.subjectId, 'activity');
    const filter: Record<string, unknown> = { subjectId: request.params.subjectId };
    if (request.query.before) filter.at = { $lt: new Date(request.query.before) };
    const rows = await app.models.activity.find(filter).sort({ at: -1 }).limit(request.query.limit).lean();
    return { entries: rows.map((r) => ({
      id: r._id, kind: r.kind, at: r.at.toISOString(), ...(r.target ? { target: r.target } : {}), ...(r.query ? { query: r.query } : {}),
      ...(r.action ? { action: r.action } : {}), retentionUntil: app.retentionPeriods.until('activity-log', r.at).toISOString(),
    })) };
  });

  app.delete('/subjects/:subjectId/activity/:activityId', {
    preHandler: app.requireSubject('subjectId', []),
    schema: {
      tags: ['activity'], summary: 'Delete one activity entry', security: [{ bearer: [] }],
      params: Type.Object({ subjectId: SubjectIdParam.properties.subjectId, activityId: Type.String({ pattern: '^act_[0-9a-f]{32}$' }) }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...errors(401, 403, 404) },
    },
  }, async (request, reply) => {
    const res = await app.models.activity.deleteOne({ _id: request.params.activityId, subjectId: request.params.subjectId });
    if (!res.deletedCount) throw IdentityErrors.notFound('No such activity entry');
    return reply.code(204).send(null);
  });

  app.delete('/subjects/:subjectId/activity', {
    preHandler: app.requireSubject('subjectId', []),
    schema: { tags: ['activity'], summary: 'Delete the whole activity log', security: [{ bearer: [] }], params: SubjectIdParam, response: { 200: Type.Object({ deleted: Type.Integer() }), ...errors(401, 403) } },
  }, async (request) => {
    const res = await app.models.activity.deleteMany({ subjectId: request.params.subjectId });
    await app.audit.record(request, request.params.subjectId, 'activity-deleted', ['activity-log']);
    return { deleted: res.deletedCount };
  });
};
export default activityRoutes;
