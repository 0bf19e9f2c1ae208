import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DataCategorySchema, ErasureParticipantSchema, LegalBasisSchema, RecordId, SubjectId, Timestamp } from '@pipp/contracts';
import { Type } from '@sinclair/typebox';
import { actorOf } from '../../plugins/audit.js';
import { errorResponses } from '../schemas.js';

const KeptView = Type.Object({
  keptId: Type.String(),
  requestId: RecordId,
  subjectId: SubjectId,
  participant: ErasureParticipantSchema,
  category: DataCategorySchema,
  legalBasis: LegalBasisSchema,
  purgeAt: Timestamp,
  reason: Type.String(),
  state: Type.Union([Type.Literal('isolated'), Type.Literal('purge-requested'), Type.Literal('purged')]),
  purgeRequestId: Type.Optional(RecordId),
  purgedAt: Type.Optional(Timestamp),
});

/**
 * What participants kept by law despite erasures (policy 4.2, 5.1, PIPL art. 47), isolated with their
 * basis and purge date: `GET /v1/retention/admin/kept-records` (operator, dpo).
 */
const keptRecords: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/admin/kept-records', {
    preHandler: app.requireRole('operator', 'dpo'),
    schema: {
      summary: 'Records kept by law, isolated until their purge date (operator, dpo)', tags: ['kept-by-law'],
      querystring: Type.Object({
        subjectId: Type.Optional(SubjectId),
        state: Type.Optional(Type.Union([Type.Literal('isolated'), Type.Literal('purge-requested'), Type.Literal('purged')])),
        dueBefore: Type.Optional(Type.String({ format: 'date-time' })),
        limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ items: Type.Array(KeptView) }), ...errorResponses(400) },
    },
  }, async (request) => {
    const q = request.query;
    const docs = await app.store.kept.find({
      ...(q.subjectId ? { subjectId: q.subjectId } : {}), ...(q.state ? { state: q.state } : {}), ...(q.dueBefore ? { purgeAt: { $lt: new Date(q.dueBefore) } } : {}),
    }).sort({ purgeAt: 1 }).limit(q.limit).lean();
    if (q.subjectId) await app.audit({ actor: actorOf(request.user), action: 'kept-records.read', target: { type: 'subject', id: q.subjectId }, subjectId: q.subjectId, clause: '5.1' });
    return {
      items: docs.map((k) => ({
        keptId: k._id, requestId: k.requestId, subjectId: k.subjectId, participant: k.participant, category: k.category, legalBasis: k.legalBasis,
        purgeAt: k.purgeAt.toISOString(), reason: k.reason, state: k.state, ...(k.purgeRequestId ? { purgeRequestId: k.purgeRequestId } : {}),
        ...(k.purgedAt ? { purgedAt: k.purgedAt.toISOString() } : {}),
      })),
    };
  });
};

export default keptRecords;
