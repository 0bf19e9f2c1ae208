import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { categoryTitles, type ProcessingFunction, type Purpose } from '../../domain/catalogue.js';
import { ConsentErrors } from '../../errors.js';
import type { CatalogueChangeDoc } from '../../plugins/models.js';
import {
  ActorSchema, CatalogueSchema, Errors4xx, FunctionBodySchema, FunctionIdParams, FunctionSchema, PurposeBodySchema, PurposeIdParams,
  PurposeSchema, Type,
} from '../../schemas.js';

/** The standard notice shown when asking a subject for consent to a purpose (recorded when a client sends none). */
export function standardNotice(p: Purpose): string {
  const kind = p.kind === 'basic'
    ? 'The basic functions need it; refusing blocks only the functions that need it (policy 2.1.1).'
    : 'It is optional: refusing it never affects the basic functions (policy 2.1.2).';
  return `${p.title}: we process your ${categoryTitles(p.categories)} because ${p.why}. ${kind} You can withdraw at any time, as easily as you agree.`;
}

/**
 * The catalogue of purposes and functions (policy 2.1, 2.4.1, 2.4.2(2)).
 * - `GET /public/catalogue` (anonymous): every purpose (with its standard consent notice) and function,
 *   so clients show the subject what each needs and why;
 * - `PUT /admin/purposes/:purposeId`, `PUT /admin/functions/:functionId` (dpo): create or replace, with
 *   optional `expectedRevision`; 409 (with the clause) when the catalogue would break the policy, e.g. a
 *   basic function needing an additional purpose (2.1.2); audited and versioned;
 * - `GET /admin/catalogue/changes` (operator, dpo): the audit trail of catalogue edits, newest first.
 */
export default async function catalogueRoutes(app: FastifyInstance) {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const purposeOut = (p: Purpose) => ({ ...p, revision: app.catalogue.revisionOf('purpose', p.id) ?? 0, notice: standardNotice(p) });
  const functionOut = (f: ProcessingFunction) => {
    const s = app.projection.shutdowns.get(f.id);
    return {
      ...f, revision: app.catalogue.revisionOf('function', f.id) ?? 0,
      shutDown: s && s.effectiveAt <= Date.now() ? { shutdownId: s.shutdownId, effectiveAt: new Date(s.effectiveAt).toISOString() } : null,
    };
  };

  r.get('/public/catalogue', {
    schema: { tags: ['catalogue'], summary: 'Purposes and functions: what each needs and why', response: { 200: CatalogueSchema } },
  }, async () => ({
    purposes: [...app.projection.purposes.values()].map(purposeOut),
    functions: [...app.projection.functions.values()].map(functionOut),
  }));

  r.put('/admin/purposes/:purposeId', {
    preHandler: app.requireRole('dpo'),
    schema: {
      tags: ['catalogue'], 'x-pipp-roles': ['dpo'], summary: 'Create or replace a purpose (DPO)', security: [{ bearer: [] }],
      params: PurposeIdParams, body: PurposeBodySchema, response: { 200: PurposeSchema, 201: PurposeSchema, ...Errors4xx(400, 401, 403, 409) },
    },
  }, async (request, reply) => {
    const { expectedRevision, ...b } = request.body;
    const purpose: Purpose = { id: request.params.purposeId, ...b, description: b.description ?? '', standingBasis: b.standingBasis ?? null, requires: b.requires ?? null, grantedAtRegistration: b.grantedAtRegistration ?? false, status: b.status ?? 'active' };
    const { created } = await app.catalogue.putPurpose(purpose, { role: 'dpo', id: request.user.sub }, expectedRevision);
    await app.audit(request, 'catalogue.purpose.put', { target: purpose.id });
    return reply.code(created ? 201 : 200).send(purposeOut(purpose));
  });

  r.put('/admin/functions/:functionId', {
    preHandler: app.requireRole('dpo'),
    schema: {
      tags: ['catalogue'], 'x-pipp-roles': ['dpo'], summary: 'Create or replace a function (DPO)', security: [{ bearer: [] }],
      params: FunctionIdParams, body: FunctionBodySchema, response: { 200: FunctionSchema, 201: FunctionSchema, ...Errors4xx(400, 401, 403, 409) },
    },
  }, async (request, reply) => {
    const { expectedRevision, ...b } = request.body;
    const fn: ProcessingFunction = { id: request.params.functionId, ...b, status: b.status ?? 'active' };
    const { created } = await app.catalogue.putFunction(fn, { role: 'dpo', id: request.user.sub }, expectedRevision);
    await app.audit(request, 'catalogue.function.put', { target: fn.id });
    return reply.code(created ? 201 : 200).send(functionOut(fn));
  });

  r.get('/admin/catalogue/changes', {
    preHandler: app.requireRole('operator', 'dpo'),
    schema: {
      tags: ['catalogue'], 'x-pipp-roles': ['operator', 'dpo'], summary: 'Audit trail of catalogue edits', security: [{ bearer: [] }],
      querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }) }, { additionalProperties: false }),
      response: {
        200: Type.Object({
          changes: Type.Array(Type.Object({
            at: Type.String(), actor: ActorSchema, kind: Type.String(), itemId: Type.String(), revision: Type.Integer(),
            before: Type.Unknown(), after: Type.Unknown(),
          })),
        }),
        ...Errors4xx(400, 401, 403),
      },
    },
  }, async (request) => {
    const docs = await app.models.catalogueChanges.find({}).sort({ at: -1 }).limit(request.query.limit).lean<CatalogueChangeDoc[]>();
    return { changes: docs.map((d) => ({ at: new Date(d.at).toISOString(), actor: d.actor, kind: d.kind, itemId: d.itemId, revision: d.revision, before: d.before, after: d.after })) };
  });

  r.get('/public/catalogue/purposes/:purposeId', {
    schema: { tags: ['catalogue'], summary: 'One purpose', params: PurposeIdParams, response: { 200: PurposeSchema, ...Errors4xx(400, 404) } },
  }, async (request) => {
    const p = app.projection.purposes.get(request.params.purposeId);
    if (!p) throw ConsentErrors.notFound(`There is no purpose ${request.params.purposeId}`);
    return purposeOut(p);
  });
}
