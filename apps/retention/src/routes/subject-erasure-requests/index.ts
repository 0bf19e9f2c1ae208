import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ErasureGround } from '@pipp/contracts';
import { actorOf } from '../../plugins/audit.js';
import { RetentionErrors } from '../../errors.js';
import {
  CreateErasureBody, ErasureRequestList, ErasureRequestView, ListQuery, RequestIdParams, StatusKeyHeaders, SubjectParams, SubjectRequestParams, errorResponses,
} from '../schemas.js';
import { newStatusKey, statusKeyMatches } from '../../domain/status-key.js';
import { requestView } from '../views.js';

/**
 * A data subject's erasure requests (policy 4.1, 4.2): `/v1/retention/subjects/:subjectId/erasure-requests`.
 * A subject reaches only their own (`requireSubject`); operators and the DPO reach anyone's, audited,
 * and what they open is an operator request on the subject's behalf.
 */
const subjectErasureRequests: FastifyPluginAsyncTypebox = async (app) => {
  const guard = app.requireSubject('subjectId', ['operator', 'dpo']);

  /**
   * Ask for erasure (policy 4.1 delete, 4.2.1–4.2.5 grounds): the whole account or some categories.
   * 201 with the new request (or one recorded `refused` with a coded reason, e.g. a legal hold);
   * 200 with the open request for the same scope when this one joins it. Either answer carries a new
   * `statusKey` for the public status route below (an account erasure ends the subject's sessions).
   * Errors: 400 PIPP_VALIDATION / PIPP_ERASURE_GROUND_NOT_ADMISSIBLE / PIPP_BAD_TIME; 403 PIPP_STAFF_ONLY.
   */
  app.post('/subjects/:subjectId/erasure-requests', {
    preHandler: guard,
    schema: {
      summary: 'Request erasure of your personal information (policy 4.1, 4.2)',
      tags: ['erasure'],
      params: SubjectParams,
      body: CreateErasureBody,
      response: { 200: ErasureRequestView, 201: ErasureRequestView, ...errorResponses(400) },
    },
  }, async (request, reply) => {
    const { subjectId } = request.params;
    const user = request.user;
    const staff = user.role === 'operator' || user.role === 'dpo';
    const body = request.body;
    if (!staff && (body.reference || body.deadline)) throw RetentionErrors.staffOnly('reference and deadline are set by staff only');
    const ground = (body.ground ?? '4.1') as ErasureGround;
    const statusKey = newStatusKey();
    const result = await app.erasures.open({
      subjectId, scope: body.scope, ground, origin: staff ? 'operator' : 'subject', requestedBy: actorOf(user),
      reference: body.reference, deadline: body.deadline ? new Date(body.deadline) : undefined, statusKeyHash: statusKey.hash,
    });
    if (staff) {
      await app.audit({ actor: actorOf(user), action: 'erasure-request.create', target: { type: 'erasure-request', id: result.request._id }, subjectId, clause: ground, details: { outcome: result.outcome, scope: result.request.scopeKey } });
    }
    return reply.code(result.outcome === 'joined' ? 200 : 201).send({ ...requestView(result.request, staff ? 'staff' : 'subject'), statusKey: statusKey.key });
  });

  /**
   * One erasure request as its subject sees it, without signing in (policy 4.1, 4.2: the subject sees
   * the progress; an account erasure has ended their sessions): header `X-PIPP-Status-Key`, the key
   * handed out when the request was made or joined. 404 PIPP_ERASURE_REQUEST_NOT_FOUND for an unknown
   * request or a wrong key alike; 400 PIPP_VALIDATION without the header.
   */
  app.get('/public/erasure-requests/:requestId', {
    schema: {
      summary: 'Follow an erasure request with its status key, without signing in (policy 4.1, 4.2)',
      tags: ['erasure'],
      security: [],
      params: RequestIdParams,
      headers: StatusKeyHeaders,
      response: { 200: ErasureRequestView, ...errorResponses(400, 404) },
    },
  }, async (request) => {
    const doc = await app.store.requests.findById(request.params.requestId).lean();
    if (!doc || !statusKeyMatches(request.headers['x-pipp-status-key'], doc.statusKeys)) {
      throw RetentionErrors.requestNotFound('No erasure request with this id and status key');
    }
    return requestView(doc, 'subject', { backupsIsolatedUntil: doc.status === 'completed' ? await app.backups.suppressedUntil(doc) : undefined });
  });

  /** The subject's erasure requests, newest first, with their progress. */
  app.get('/subjects/:subjectId/erasure-requests', {
    preHandler: guard,
    schema: {
      summary: 'Your erasure requests and their progress (policy 4.1)',
      tags: ['erasure'],
      params: SubjectParams,
      querystring: ListQuery,
      response: { 200: ErasureRequestList, ...errorResponses(400) },
    },
  }, async (request) => {
    const { subjectId } = request.params;
    const { limit, before } = request.query;
    const docs = await app.store.requests.find({ subjectId, ...(before ? { createdAt: { $lt: new Date(before) } } : {}) }).sort({ createdAt: -1 }).limit(limit).lean();
    const staff = request.user.role !== 'subject';
    if (staff) await app.audit({ actor: actorOf(request.user), action: 'erasure-request.list', target: { type: 'subject', id: subjectId }, subjectId, clause: '4.1' });
    const last = docs.at(-1);
    return { items: docs.map((d) => requestView(d, staff ? 'staff' : 'subject')), ...(docs.length === limit && last ? { nextBefore: last.createdAt.toISOString() } : {}) };
  });

  /** One erasure request: each participant's progress, counts, what is kept by law and until when. */
  app.get('/subjects/:subjectId/erasure-requests/:requestId', {
    preHandler: guard,
    schema: {
      summary: 'One of your erasure requests with its progress (policy 4.1, 4.2)',
      tags: ['erasure'],
      params: SubjectRequestParams,
      response: { 200: ErasureRequestView, ...errorResponses(404) },
    },
  }, async (request) => {
    const { subjectId, requestId } = request.params;
    const doc = await app.store.requests.findOne({ _id: requestId, subjectId }).lean();
    if (!doc) throw RetentionErrors.requestNotFound(`You have no erasure request ${requestId}`);
    const staff = request.user.role !== 'subject';
    if (staff) await app.audit({ actor: actorOf(request.user), action: 'erasure-request.read', target: { type: 'erasure-request', id: requestId }, subjectId, clause: '4.1' });
    return requestView(doc, staff ? 'staff' : 'subject', { backupsIsolatedUntil: doc.status === 'completed' ? await app.backups.suppressedUntil(doc) : undefined });
  });
};

export default subjectErasureRequests;
