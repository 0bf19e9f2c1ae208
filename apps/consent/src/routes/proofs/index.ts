import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { SubjectId } from '@pipp/contracts';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config.js';
import { pseudonymFor } from '../../domain/receipt.js';
import type { AuditDoc, ConsentRecordDoc } from '../../plugins/models.js';
import { ActorSchema, Errors4xx, RecordSchema, Type } from '../../schemas.js';
import { recordOut } from '../consents/index.js';

/**
 * Staff access to what is kept by law and to the audit trail (policy 4.1, 4.2; PIPL art. 69):
 * - `POST /admin/consent-proofs/lookup` (dpo): the pseudonymized proofs of consent kept after a
 *   subject's erasure, found by computing the subject's pseudonym (the key is held by this service
 *   only); audited. Nothing else reaches those records;
 * - `GET /admin/audit` (dpo): staff access to subjects' consent data and staff changes, newest first.
 */
export default async function proofRoutes(app: FastifyInstance, { config }: { config: Config }) {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.post('/admin/consent-proofs/lookup', {
    preHandler: app.requireRole('dpo'),
    schema: {
      tags: ['proofs'], 'x-pipp-roles': ['dpo'], summary: 'Proofs of consent kept after erasure, for one subject id (DPO, audited)', security: [{ bearer: [] }],
      body: Type.Object({ subjectId: SubjectId, reason: Type.String({ minLength: 3, maxLength: 500 }) }, { additionalProperties: false }),
      response: {
        200: Type.Object({
          records: Type.Array(Type.Composite([RecordSchema, Type.Object({
            keptUntil: Type.String(), legalBasis: Type.String(), erasureRequestId: Type.String(), reason: Type.String(),
          })])),
        }),
        ...Errors4xx(400, 401, 403),
      },
    },
  }, async (request) => {
    const pseudonym = pseudonymFor(request.body.subjectId, config.CONSENT_PSEUDONYM_KEY);
    await app.audit(request, 'consent-proofs.lookup', { target: pseudonym });
    const docs = await app.models.records.find({ 'pseudonymized.pseudonym': pseudonym }).sort({ at: 1 }).lean<(ConsentRecordDoc & { pseudonymized: { purgeAt: Date; legalBasis: string; requestId: string; reason: string } })[]>();
    return {
      records: docs.map((d) => ({
        ...recordOut(d), keptUntil: new Date(d.pseudonymized.purgeAt).toISOString(), legalBasis: d.pseudonymized.legalBasis,
        erasureRequestId: d.pseudonymized.requestId, reason: d.pseudonymized.reason,
      })),
    };
  });

  r.get('/admin/audit', {
    preHandler: app.requireRole('dpo'),
    schema: {
      tags: ['proofs'], 'x-pipp-roles': ['dpo'], summary: 'Audit trail of staff access and changes (DPO)', security: [{ bearer: [] }],
      querystring: Type.Object({ subjectId: Type.Optional(SubjectId), limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }) }, { additionalProperties: false }),
      response: {
        200: Type.Object({ records: Type.Array(Type.Object({ at: Type.String(), actor: ActorSchema, action: Type.String(), subjectId: Type.Optional(Type.String()), target: Type.Optional(Type.String()), requestId: Type.String() })) }),
        ...Errors4xx(400, 401, 403),
      },
    },
  }, async (request) => {
    const filter = request.query.subjectId ? { subjectId: request.query.subjectId } : {};
    const docs = await app.models.audit.find(filter).sort({ at: -1 }).limit(request.query.limit).lean<AuditDoc[]>();
    return { records: docs.map((d) => ({ at: new Date(d.at).toISOString(), actor: d.actor, action: d.action, ...(d.subjectId ? { subjectId: d.subjectId } : {}), ...(d.target ? { target: d.target } : {}), requestId: d.requestId })) };
  });
}
