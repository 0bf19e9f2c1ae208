import { DataCategorySchema, VisibleText } from '@pipp/contracts';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config.js';
import { checkDisclosure, type DisclosureGround } from '../../domain/disclosure.js';
import { sharingClauseOf } from '../../domain/sharing.js';
import { DsErrors } from '../../errors.js';
import type { DisclosureDoc } from '../../plugins/models.js';
import { ActorOut, BasisOut, ClaimedBasisSchema, SubjectParams, actorOf, assertFunctionOpen, decide, errors, iso, newId, refusalError } from '../common.js';
import { recordedBasis } from '../shares/index.js';

const DisclosureIn = Type.Object({
  categories: Type.Array(DataCategorySchema, { minItems: 1, maxItems: 32, uniqueItems: true }),
  channel: VisibleText(200, { description: 'Where it is disclosed (public profile, announcement board …)' }),
  functionId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9][a-z0-9-]*$' })),
  ground: Type.Union([
    Type.Object({ ground: Type.Literal('3.3.1'), via: Type.Union([Type.Literal('express-consent'), Type.Literal('active-choice')]) }, { additionalProperties: false }),
    Type.Object({
      ground: Type.Literal('3.3.2'),
      violationRef: VisibleText(256, { description: 'Reference of the violation decision or case' }),
      violation: VisibleText(2000, { description: 'The violation, as it will be disclosed' }),
      measuresTaken: Type.Array(VisibleText(500), { maxItems: 20, description: 'What the platform did about it' }),
      basis: Type.Optional(ClaimedBasisSchema),
    }, { additionalProperties: false }),
  ]),
}, { additionalProperties: false });

const DisclosureOut = Type.Object({
  id: Type.String(), subjectId: Type.String(), categories: Type.Array(Type.String()), ground: Type.String(),
  via: Type.Optional(Type.String()), violationRef: Type.Optional(Type.String()), violation: Type.Optional(Type.String()),
  measuresTaken: Type.Optional(Type.Array(Type.String())), basis: BasisOut, clause: Type.String(), channel: Type.String(),
  decidedBy: ActorOut, disclosedAt: Type.String(),
});

const view = (d: DisclosureDoc): Static<typeof DisclosureOut> => ({
  id: d._id, subjectId: d.subjectId, categories: d.categories, ground: d.ground,
  ...(d.via ? { via: d.via } : {}), ...(d.violationRef ? { violationRef: d.violationRef } : {}), ...(d.violation ? { violation: d.violation } : {}),
  ...(d.measuresTaken ? { measuresTaken: d.measuresTaken } : {}),
  basis: d.basis ?? null, clause: d.clause, channel: d.channel, decidedBy: d.decidedBy, disclosedAt: iso(d.disclosedAt)!,
});

/** Public disclosure of a subject's PI, only on the grounds of policy 3.3 (PIPL art. 25). */
export default async function disclosureRoutes(fastify: FastifyInstance, _opts: { config: Config }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { disclosures } = app.models;

  /**
   * Records (and so permits) a public disclosure: 3.3.1 by the subject's active choice (their own
   * request) or express consent (purpose `public-disclosure`, asked of consent), or 3.3.2 an operator's
   * or DPO's decision that references the violation and the measures taken and rests on a 3.4 basis
   * or the subject's consent. A 3.3.2 disclosure notifies the subject (incident service). Roles: the
   * subject, operator, dpo, service. Errors: 403 PIPP_DISCLOSURE_REFUSED (clause), 422 when a 3.3.2
   * decision lacks its references or measures, 403 PIPP_FUNCTION_SHUT_DOWN, 410 PIPP_SUBJECT_ERASED
   * once the subject's account erasure began (policy 4.2, PIPL art. 47), 503 consent unreachable.
   */
  app.post('/subjects/:subjectId/disclosures', {
    preHandler: app.requireSubject('subjectId', ['operator', 'dpo', 'service']),
    schema: { tags: ['disclosure'], params: SubjectParams, body: DisclosureIn, response: { 201: DisclosureOut, ...errors(400, 401, 403, 410, 422, 503) } },
  }, async (request, reply) => {
    const { subjectId } = request.params;
    const b = request.body;
    await app.erasedSubjects.refuseErased([subjectId]); // nothing more about an erased subject (4.2)
    await assertFunctionOpen(app, b.functionId);
    const ground = b.ground as DisclosureGround;
    const check = checkDisclosure(ground, request.user, subjectId);
    if (!check.ok) {
      if (check.kind === 'ineligible') throw DsErrors.disclosureRefused(check.message, { clause: check.clause });
      throw refusalError(check);
    }
    let basis: DisclosureDoc['basis'] = null;
    let clause: string = ground.ground;
    if (check.needs === 'consent-decision') {
      const decision = await decide(app, {
        subjectId, service: 'data-sharing', purpose: 'public-disclosure', categories: b.categories, disclosure: true,
        ...(b.functionId ? { functionId: b.functionId } : {}),
        ...(check.basis ? { legalBasis: check.basis } : {}),
      });
      if (!decision.allowed) {
        throw DsErrors.disclosureRefused(
          ground.ground === '3.3.1'
            ? `public disclosure needs the subject's express consent or active choice (3.3.1): ${decision.reason}`
            : `a 3.3.2 disclosure needs a legal basis of 3.4 with evidence, or the subject's consent: ${decision.reason}`,
          { clause: decision.clause || ground.ground },
        );
      }
      basis = recordedBasis(decision, check.basis);
      if (ground.ground === '3.3.2' && basis?.kind === 'legal-basis') clause = `3.3.2; ${sharingClauseOf(basis.legalBasis)}`;
    }
    const id = newId('dsc');
    const doc: Omit<DisclosureDoc, 'held'> = {
      _id: id, subjectId, categories: b.categories, ground: ground.ground, basis, clause, channel: b.channel, ...(b.functionId ? { functionId: b.functionId } : {}), decidedBy: actorOf(request), disclosedAt: new Date(),
      ...(ground.ground === '3.3.1' ? { via: ground.via } : { violationRef: ground.violationRef, violation: ground.violation, measuresTaken: ground.measuresTaken }),
    };
    const events = ground.ground === '3.3.2' ? [app.outbox.entry('privacy.notification.requested', {
      subject: subjectId,
      payload: {
        notificationId: `${id}-notice`, kind: 'general', requestedBy: 'data-sharing', audience: { subjectIds: [subjectId] },
        title: 'Information about you was publicly disclosed',
        body: `Under policy 3.3.2 we disclosed information about you (${b.categories.join(', ')}) on ${b.channel}, concerning ${ground.violationRef}. You can see the details, including the measures taken, in your sharing records.`,
        elements: { violation: ground.violation, measuresTaken: ground.measuresTaken.join('; '), clause: '3.3.2' },
        clause: '3.3.2',
      },
    })] : [];
    // Insert, then look at the erasure mark again: the record is taken back when the account erasure
    // began during the write (plugins/erased-subjects.ts). Its notice to the subject, if the relay
    // published it meanwhile, goes to the incident service, which keeps erased-subject marks of its own.
    const created = await app.erasedSubjects.recordUnlessErased([subjectId], 'disclosure',
      () => app.outbox.insert(disclosures, { ...doc, held: null }, events), () => disclosures.deleteOne({ _id: id }));
    return reply.code(201).send(view(created.toObject() as DisclosureDoc));
  });

  /** The subject's public disclosures, newest first (subject, operator, dpo). */
  app.get('/subjects/:subjectId/disclosures', {
    preHandler: [app.requireSubject('subjectId', ['operator', 'dpo']), app.erasedSubjects.guardReads],
    schema: { tags: ['disclosure'], params: SubjectParams, response: { 200: Type.Object({ disclosures: Type.Array(DisclosureOut) }), ...errors(400, 401, 403, 410) } },
  }, async (request) => {
    const docs = await disclosures.find({ subjectId: request.params.subjectId, held: null }).sort({ disclosedAt: -1 }).limit(500).lean();
    return { disclosures: docs.map(view) };
  });
}
