import { RecordId, VisibleText } from '@pipp/contracts';
import { Errors } from '@pipp/service-kit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config.js';
import type { IndependentAuthorizationDoc } from '../../plugins/models.js';
import { ActorOut, SubjectParams, actorOf, errors, iso, newId } from '../common.js';

const Out = Type.Object({ id: Type.String(), subjectId: Type.String(), recipientId: Type.String(), evidenceRef: Type.String(), recordedBy: ActorOut, recordedAt: Type.String() });
const view = (d: IndependentAuthorizationDoc) => ({ id: d._id, subjectId: d.subjectId, recipientId: d.recipientId, evidenceRef: d.evidenceRef, recordedBy: d.recordedBy, recordedAt: iso(d.recordedAt)! });

/**
 * Recipients that hold the subject's own, independent authorization: on erasure they are recorded as
 * such and not asked to delete (policy 4.2: "or those subjects have independently obtained your
 * authorization").
 */
export default async function independentRoutes(fastify: FastifyInstance, _opts: { config: Config }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { independent, recipients } = app.models;

  /**
   * Records that a recipient holds the subject's independent authorization, with evidence (operator,
   * dpo; policy 4.2). 404 unknown recipient; 409 already recorded; 410 PIPP_SUBJECT_ERASED once the
   * subject's account erasure began (policy 4.2, PIPL art. 47; a record written while it began is taken back).
   */
  app.post('/subjects/:subjectId/independent-authorizations', {
    preHandler: app.requireRole('operator', 'dpo'),
    schema: {
      tags: ['erasure'], params: SubjectParams,
      body: Type.Object({ recipientId: RecordId, evidenceRef: VisibleText(512, { description: "Reference of the recipient's own authorization from the subject" }) }, { additionalProperties: false }),
      response: { 201: Out, ...errors(400, 401, 403, 404, 409, 410) },
    },
  }, async (request, reply) => {
    const { subjectId } = request.params;
    await app.erasedSubjects.refuseErased([subjectId]); // nothing more about an erased subject (4.2)
    if (!await recipients.exists({ _id: request.body.recipientId })) throw Errors.notFound('No such recipient');
    const doc = await app.erasedSubjects.recordUnlessErased([subjectId], 'independent authorization', () => independent.create({
      _id: newId('ina'), subjectId, recipientId: request.body.recipientId, evidenceRef: request.body.evidenceRef,
      recordedBy: actorOf(request), recordedAt: new Date(),
    }), (written) => independent.deleteOne({ _id: written._id }));
    return reply.code(201).send(view(doc.toObject()));
  });

  /** The recipients recorded as holding the subject's independent authorization (subject, operator, dpo). */
  app.get('/subjects/:subjectId/independent-authorizations', {
    preHandler: [app.requireSubject('subjectId', ['operator', 'dpo']), app.erasedSubjects.guardReads],
    schema: { tags: ['erasure'], params: SubjectParams, response: { 200: Type.Object({ authorizations: Type.Array(Out) }), ...errors(400, 401, 403, 410) } },
  }, async (request) => {
    const docs = await independent.find({ subjectId: request.params.subjectId }).sort({ recordedAt: -1 }).lean();
    return { authorizations: docs.map(view) };
  });

  /** Removes such a record (operator, dpo): the recipient will be asked to delete again. */
  app.delete('/subjects/:subjectId/independent-authorizations/:authorizationId', {
    preHandler: app.requireRole('operator', 'dpo'),
    schema: {
      tags: ['erasure'], params: Type.Object({ subjectId: SubjectParams.properties.subjectId, authorizationId: RecordId }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...errors(400, 401, 403, 404) },
    },
  }, async (request, reply) => {
    const r = await independent.deleteOne({ _id: request.params.authorizationId, subjectId: request.params.subjectId });
    if (!r.deletedCount) throw Errors.notFound('No such record');
    return reply.code(204).send(null);
  });
}
