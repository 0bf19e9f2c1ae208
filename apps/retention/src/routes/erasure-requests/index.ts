import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ERASURE_PARTICIPANTS, ErasureParticipantSchema, SubjectId } from '@pipp/contracts';
import { Type } from '@sinclair/typebox';
import { actorOf } from '../../plugins/audit.js';
import { RetentionErrors } from '../../errors.js';
import { ErasureRequestList, ErasureRequestView, ListQuery, OriginSchema, RequestIdParams, errorResponses } from '../schemas.js';
import { requestView } from '../views.js';

/**
 * Staff view of the erasure saga (policy 4.1, 4.2): `/v1/retention/admin/erasure-requests…`
 * (operator, dpo). Lists and filters requests (e.g. the escalated ones the DPO must look at), shows
 * one with each participant's state and last error, and retries failed or silent participants.
 */
const erasureRequests: FastifyPluginAsyncTypebox = async (app) => {
  const staff = app.requireRole('operator', 'dpo');

  app.get('/admin/erasure-requests', {
    preHandler: staff,
    schema: {
      summary: 'Erasure requests, newest first, filtered (operator, dpo)',
      tags: ['erasure'],
      querystring: Type.Composite([ListQuery, Type.Object({
        status: Type.Optional(Type.Union([Type.Literal('in-progress'), Type.Literal('completed'), Type.Literal('refused')])),
        subjectId: Type.Optional(SubjectId),
        origin: Type.Optional(OriginSchema),
        kind: Type.Optional(Type.Union([Type.Literal('erasure'), Type.Literal('purge'), Type.Literal('restore')])),
        escalated: Type.Optional(Type.Boolean({ description: 'true: only requests escalated to the DPO' })),
      })], { additionalProperties: false }),
      response: { 200: ErasureRequestList, ...errorResponses(400) },
    },
  }, async (request) => {
    const q = request.query;
    const filter: Record<string, unknown> = {};
    if (q.status) filter.status = q.status;
    if (q.subjectId) filter.subjectId = q.subjectId;
    if (q.origin) filter.origin = q.origin;
    if (q.kind) filter.kind = q.kind;
    if (q.escalated) filter['escalations.0'] = { $exists: true };
    if (q.before) filter.createdAt = { $lt: new Date(q.before) };
    const docs = await app.store.requests.find(filter).sort({ createdAt: -1 }).limit(q.limit).lean();
    await app.audit({ actor: actorOf(request.user), action: 'erasure-request.list', target: { type: 'erasure-requests', id: 'query' }, subjectId: q.subjectId, clause: '4.1', details: { status: q.status, escalated: q.escalated, results: docs.length } });
    const last = docs.at(-1);
    return { items: docs.map((d) => requestView(d, 'staff')), ...(docs.length === q.limit && last ? { nextBefore: last.createdAt.toISOString() } : {}) };
  });

  app.get('/admin/erasure-requests/:requestId', {
    preHandler: staff,
    schema: {
      summary: 'One erasure request with every participant\'s state and last error (operator, dpo)',
      tags: ['erasure'],
      params: RequestIdParams,
      response: { 200: ErasureRequestView, ...errorResponses(404) },
    },
  }, async (request) => {
    const doc = await app.store.requests.findById(request.params.requestId).lean();
    if (!doc) throw RetentionErrors.requestNotFound(`No erasure request ${request.params.requestId}`);
    await app.audit({ actor: actorOf(request.user), action: 'erasure-request.read', target: { type: 'erasure-request', id: doc._id }, subjectId: doc.subjectId, clause: '4.1' });
    return requestView(doc, 'staff', { backupsIsolatedUntil: doc.status === 'completed' ? await app.backups.suppressedUntil(doc) : undefined });
  });

  /**
   * Retry failed or silent participants now (default: every one not completed), with a fresh budget of
   * automatic retries. Errors: 404 PIPP_ERASURE_REQUEST_NOT_FOUND; 409 PIPP_ERASURE_NOT_RETRYABLE.
   */
  app.post('/admin/erasure-requests/:requestId/retry', {
    preHandler: staff,
    schema: {
      summary: 'Retry failed or silent participants of an erasure request (operator, dpo)',
      tags: ['erasure'],
      params: RequestIdParams,
      body: Type.Object({ participants: Type.Optional(Type.Array(ErasureParticipantSchema, { minItems: 1, maxItems: ERASURE_PARTICIPANTS.length, uniqueItems: true })) }, { additionalProperties: false }),
      response: { 200: ErasureRequestView, ...errorResponses(400, 404, 409) },
    },
  }, async (request) => {
    const { request: doc, participants } = await app.erasures.operatorRetry(request.params.requestId, request.body.participants);
    await app.audit({ actor: actorOf(request.user), action: 'erasure-request.retry', target: { type: 'erasure-request', id: doc._id }, subjectId: doc.subjectId, clause: '4.1', details: { participants } });
    return requestView(doc, 'staff');
  });
};

export default erasureRequests;
