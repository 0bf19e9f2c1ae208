import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { SubjectId, Timestamp } from '@pipp/contracts';
import { Type } from '@sinclair/typebox';
import { ActorSchema, errorResponses } from '../schemas.js';

/**
 * The retention service's audit trail: `GET /v1/retention/admin/audit` (dpo): who changed retention
 * policies, holds, backups, shutdowns, and which staff read or acted on a subject's requests.
 */
const audit: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/admin/audit', {
    preHandler: app.requireRole('dpo'),
    schema: {
      summary: 'Audit records, newest first (dpo)', tags: ['audit'],
      querystring: Type.Object({
        subjectId: Type.Optional(SubjectId), before: Type.Optional(Type.String({ format: 'date-time' })), limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
      }, { additionalProperties: false }),
      response: {
        200: Type.Object({
          items: Type.Array(Type.Object({
            at: Timestamp, actor: ActorSchema, action: Type.String(), target: Type.Object({ type: Type.String(), id: Type.String() }),
            subjectId: Type.Optional(Type.String()), clause: Type.Optional(Type.String()), details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
          })),
        }),
        ...errorResponses(400),
      },
    },
  }, async (request) => {
    const q = request.query;
    const docs = await app.store.audit.find({ ...(q.subjectId ? { subjectId: q.subjectId } : {}), ...(q.before ? { at: { $lt: new Date(q.before) } } : {}) }).sort({ at: -1 }).limit(q.limit).lean();
    return { items: docs.map((d) => ({ at: d.at.toISOString(), actor: d.actor, action: d.action, target: d.target, ...(d.subjectId ? { subjectId: d.subjectId } : {}), ...(d.clause ? { clause: d.clause } : {}), ...(d.details ? { details: d.details } : {}) })) };
  });
};

export default audit;
