import { DataCategorySchema, RecordId, VisibleText } from '@pipp/contracts';
import { Errors } from '@pipp/service-kit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config.js';
import { AUTHORIZATION_KINDS, missingAttestation } from '../../domain/other-people.js';
import { DsErrors } from '../../errors.js';
import type { OtherPeopleDoc } from '../../plugins/models.js';
import { SubjectParams, actorOf, assertFunctionOpen, errors, iso, newId } from '../common.js';

// Keys by pattern: TypeBox's Record checks a key's pattern, not its length.
const Value = Type.Record(Type.String({ pattern: '^.{1,64}$' }), Type.Union([Type.String({ maxLength: 4000 }), Type.Number(), Type.Boolean(), Type.Null()]), { maxProperties: 64, additionalProperties: false });

const In = Type.Object({
  relationship: VisibleText(100, { description: 'Who the person is to the user (emergency contact, employee …)' }),
  categories: Type.Array(DataCategorySchema, { minItems: 1, maxItems: 16, uniqueItems: true }),
  data: Value,
  functionId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9][a-z0-9-]*$' })),
  attestation: Type.Optional(Type.Object({
    authorized: Type.Optional(Type.Boolean()),
    kind: Type.Optional(Type.Union(AUTHORIZATION_KINDS.map((k) => Type.Literal(k)))),
    statement: Type.Optional(VisibleText(1000)),
  }, { additionalProperties: false })),
}, { additionalProperties: false });

const Out = Type.Object({
  id: Type.String(), subjectId: Type.String(), relationship: Type.String(), categories: Type.Array(Type.String()), data: Value,
  attestation: Type.Object({ kind: Type.String(), statement: Type.String(), attestedAt: Type.String() }), createdAt: Type.String(),
});

/** Information about other people supplied by a user (policy 2.4.2(1)). */
export default async function otherPeopleRoutes(fastify: FastifyInstance, _opts: { config: Config }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { otherPeople } = app.models;
  const view = (d: OtherPeopleDoc): Static<typeof Out> => ({
    id: d._id, subjectId: d.subjectId, relationship: d.relationship, categories: d.categories, data: JSON.parse(app.sealer.open(d.sealed)) as Static<typeof Value>,
    attestation: { kind: d.attestation.kind, statement: app.sealer.open(d.attestation.sealedStatement), attestedAt: iso(d.attestation.attestedAt)! }, createdAt: iso(d.createdAt)!,
  });

  /**
   * Stores information about another person that the subject provides, only with their attestation
   * that they obtained the person's legal authorization (kind and statement). The data is sealed at
   * rest and erased with the supplier's account. Roles: the subject, or a service acting on the
   * subject's submission. Errors: 422 PIPP_AUTHORIZATION_ATTESTATION_REQUIRED (2.4.2(1)), 403
   * PIPP_FUNCTION_SHUT_DOWN, 410 PIPP_SUBJECT_ERASED once the supplier's account erasure began (policy
   * 4.2, PIPL art. 47; a record written while it began is taken back).
   */
  app.post('/subjects/:subjectId/other-people-data', {
    preHandler: app.requireSubject('subjectId', ['service']),
    schema: { tags: ['other-people'], params: SubjectParams, body: In, response: { 201: Out, ...errors(400, 401, 403, 410, 422) } },
  }, async (request, reply) => {
    const b = request.body;
    const { subjectId } = request.params;
    await app.erasedSubjects.refuseErased([subjectId]); // nothing more about an erased subject (4.2)
    await assertFunctionOpen(app, b.functionId);
    const missing = missingAttestation(b.attestation);
    if (missing.length) {
      throw DsErrors.attestationRequired(`information about other people is accepted only when you attest that you have their legal authorization; missing: ${missing.join('; ')}`, { clause: '2.4.2(1)' });
    }
    const doc = await app.erasedSubjects.recordUnlessErased([subjectId], 'data about other people', () => otherPeople.create({
      _id: newId('oth'), subjectId, relationship: b.relationship, categories: b.categories,
      sealed: app.sealer.seal(JSON.stringify(b.data)), ...(b.functionId ? { functionId: b.functionId } : {}),
      attestation: { kind: b.attestation!.kind!, sealedStatement: app.sealer.seal(b.attestation!.statement!), attestedAt: new Date() },
      suppliedBy: actorOf(request), createdAt: new Date(),
    }), (written) => otherPeople.deleteOne({ _id: written._id }));
    return reply.code(201).send(view(doc.toObject()));
  });

  /** What the subject supplied about other people (the subject, operator, dpo). */
  app.get('/subjects/:subjectId/other-people-data', {
    preHandler: [app.requireSubject('subjectId', ['operator', 'dpo']), app.erasedSubjects.guardReads],
    schema: { tags: ['other-people'], params: SubjectParams, response: { 200: Type.Object({ records: Type.Array(Out) }), ...errors(400, 401, 403, 410) } },
  }, async (request) => {
    const docs = await otherPeople.find({ subjectId: request.params.subjectId }).sort({ createdAt: -1 }).limit(500).lean();
    return { records: docs.map(view) };
  });

  /** Deletes one record (the subject, operator, dpo). 404 when unknown. */
  app.delete('/subjects/:subjectId/other-people-data/:recordId', {
    preHandler: app.requireSubject('subjectId', ['operator', 'dpo']),
    schema: {
      tags: ['other-people'], params: Type.Object({ subjectId: SubjectParams.properties.subjectId, recordId: RecordId }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...errors(400, 401, 403, 404) },
    },
  }, async (request, reply) => {
    const r = await otherPeople.deleteOne({ _id: request.params.recordId, subjectId: request.params.subjectId });
    if (!r.deletedCount) throw Errors.notFound('No such record');
    return reply.code(204).send(null);
  });
}
