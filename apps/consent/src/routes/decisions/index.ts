import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { DecisionRequestSchema, DecisionSchema } from '@pipp/contracts';
import { Errors } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import { decide } from '../../domain/decide.js';
import { Errors4xx } from '../../schemas.js';

/**
 * `POST /v1/consent/decisions` — "may service S process categories C of subject U for purpose P
 * (to recipient R / in country K / by public disclosure)?" (policy 1.1, 2.1.1, 2.1.2, 2.4.2(2),
 * 2.4.2(4), 2.4.2(5), 3.1, 3.3, 3.4, 5.3, VI; PIPL art. 13–17, 23, 25, 29, 39).
 * Body `DecisionRequest`; 200 `Decision` whether allowed or not: `allowed`, the `basis` (the consent
 * record id, or the legal basis with its evidence), the deciding `clause` and a `reason` a person can
 * read. Answered from the in-memory projection (no database call on this path). Roles: `service` (only
 * for itself: `service` must equal the token's subject), `operator`, `dpo`. 400 on a malformed body.
 * Logged at `warn` and above only (the route is on every processing path of every service; each
 * caller records the decisions it acts on), with a request logger created only when it logs.
 */
export default async function decisionRoutes(app: FastifyInstance) {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.post('/decisions', {
    logLevel: 'warn',
    preHandler: app.requireRole('service', 'operator', 'dpo'),
    schema: {
      tags: ['decisions'],
      'x-pipp-roles': ['service', 'operator', 'dpo'],
      summary: 'May this processing happen? (allowed or denied, basis, clause)',
      security: [{ bearer: [] }],
      body: DecisionRequestSchema,
      response: { 200: DecisionSchema, ...Errors4xx(400, 401, 403) },
    },
  }, async (request) => {
    const body = request.body;
    if (request.user.role === 'service' && request.user.sub !== body.service) {
      throw Errors.forbidden(`A service asks only for itself: the token is ${request.user.sub}'s, the request names ${body.service}`);
    }
    const outcome = decide(body, app.projection.context(Date.now()), app.projection.subject(body.subjectId));
    for (const i of outcome.implied) app.ledger.recordImplied(body.subjectId, i.documentId, i.version);
    const basis = outcome.decision.basis;
    if (basis?.kind === 'legal-basis' && body.legalBasis) app.legalBasisLog.note(body, basis.legalBasis, basis.evidenceRef);
    return outcome.decision;
  });
}
