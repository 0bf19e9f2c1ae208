import { RecordId } from '@pipp/contracts';
import { Errors } from '@pipp/service-kit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config.js';
import { errors, iso } from '../common.js';

const Out = Type.Object({
  requestId: Type.String(), subjectId: Type.String(), status: Type.String(),
  counts: Type.Object({ erased: Type.Integer(), anonymized: Type.Integer(), kept: Type.Integer() }),
  kept: Type.Array(Type.Object({ category: Type.String(), legalBasis: Type.String(), purgeAt: Type.String(), reason: Type.String() })),
  recipients: Type.Array(Type.Object({ recipientId: Type.String(), status: Type.String(), noticeStatus: Type.Optional(Type.String()), categories: Type.Array(Type.String()) })),
  pendingRecipients: Type.Array(Type.String()), replies: Type.Integer(), createdAt: Type.String(), appliedAt: Type.Optional(Type.String()),
});

/** This service's part of each erasure request (policy 4.1, 4.2), for operators and the DPO. */
export default async function erasureRoutes(fastify: FastifyInstance, _opts: { config: Config }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { erasures, notices } = app.models;

  /** What was erased, kept (and why), which recipients were notified or not asked, and who has not acknowledged. */
  app.get('/admin/erasures/:requestId', {
    preHandler: app.requireRole('operator', 'dpo'),
    schema: { tags: ['erasure'], params: Type.Object({ requestId: RecordId }, { additionalProperties: false }), response: { 200: Out, ...errors(400, 401, 403, 404) } },
  }, async (request) => {
    const e = await erasures.findById(request.params.requestId).lean();
    if (!e) throw Errors.notFound('This service has not seen that erasure request');
    const ns = await notices.find({ requestId: e._id }).lean();
    const byRecipient = new Map(ns.map((n) => [n.recipientId, n]));
    return {
      requestId: e._id, subjectId: e.subjectId, status: e.status, counts: e.counts, kept: e.kept,
      recipients: e.recipients.map((r) => ({ recipientId: r.recipientId, status: r.status, categories: r.categories, ...(byRecipient.get(r.recipientId) ? { noticeStatus: byRecipient.get(r.recipientId)!.status } : {}) })),
      pendingRecipients: ns.filter((n) => n.status !== 'acknowledged').map((n) => n.recipientId).sort(),
      replies: e.replies, createdAt: iso(e.createdAt)!, ...(e.appliedAt ? { appliedAt: iso(e.appliedAt)! } : {}),
    };
  });
}
