import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { GENERAL, currentVersion } from '../../domain/policy.js';
import { clauseWithChildren } from '../../domain/policy-parser.js';
import { ConsentErrors } from '../../errors.js';
import type { PolicyVersionDoc } from '../../plugins/models.js';
import {
  ClauseParams, ClauseSchema, DocumentIdParams, Errors4xx, PolicyVersionMetaSchema, PolicyVersionSchema, PublishBodySchema,
  Type, VersionParams,
} from '../../schemas.js';

const iso = (d: Date | string) => new Date(d).toISOString();

/**
 * Policy documents and versions (policy preamble, 1.1, VI).
 * - `GET /public/policies` (anonymous): every document with the version in force;
 * - `GET /public/policies/:documentId` (anonymous): the version in force, with its text and clauses;
 * - `GET /public/policies/:documentId/versions[/:version]` (anonymous): the history, or one version;
 * - `GET /public/policies/:documentId/versions/:version/clauses/:clauseId` (anonymous): one clause
 *   (e.g. `2.4.2(4)`) with its sub-clauses — what error messages and the traceability document cite;
 * - `GET /admin/policies/:documentId/versions/:version/acceptance` (operator, dpo): how many subjects
 *   accepted the version expressly or by continued use, and how many not yet (VI);
 * - `POST /admin/policies/:documentId/versions` (dpo): publishes the next version and announces it with
 *   `privacy.policy.published` (subjects are told of the specific changes; a rights-restricting one
 *   waits for each subject's express consent). 404 for an unknown document, version or clause.
 */
export default async function policyRoutes(app: FastifyInstance) {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  const meta = (d: PolicyVersionDoc) => {
    const doc = app.projection.document(d.documentId);
    const inForce = doc ? currentVersion(doc, Date.now())?.version === d.version : false;
    return {
      documentId: d.documentId, version: d.version, title: d.title, appliesTo: d.appliesTo as never, summary: d.summary, changes: d.changes,
      restrictsRights: d.restrictsRights, affectedPurposes: d.affectedPurposes ?? [], terms: d.terms ?? null,
      effectiveAt: iso(d.effectiveAt), noticeEndsAt: iso(d.noticeEndsAt), publishedAt: iso(d.publishedAt), inForce,
    };
  };
  const find = async (documentId: string, version?: number) => {
    let v = version;
    if (v === undefined) {
      const doc = app.projection.document(documentId);
      v = doc ? currentVersion(doc, Date.now())?.version : undefined;
    }
    const found = v === undefined ? null : await app.models.policyVersions.findById(`${documentId}@${v}`).lean<PolicyVersionDoc>();
    if (!found) throw ConsentErrors.notFound(version === undefined ? `No version of the ${documentId} policy is in force` : `The ${documentId} policy has no version ${version}`);
    return found;
  };

  r.get('/public/policies', {
    schema: {
      tags: ['policies'], summary: 'Policy documents and the version of each in force',
      response: { 200: Type.Object({ documents: Type.Array(PolicyVersionMetaSchema) }) },
    },
  }, async () => {
    const ids = app.projection.documents.map((d) => currentVersion(d, Date.now())).filter((v) => v !== undefined).map((v) => `${v.documentId}@${v.version}`);
    const docs = await app.models.policyVersions.find({ _id: { $in: ids } }, { text: 0, clauses: 0 }).lean<PolicyVersionDoc[]>();
    docs.sort((a, b) => (a.documentId === GENERAL ? -1 : b.documentId === GENERAL ? 1 : a.documentId.localeCompare(b.documentId)));
    return { documents: docs.map(meta) };
  });

  r.get('/public/policies/:documentId', {
    schema: { tags: ['policies'], summary: 'The version in force of a policy, with its clauses', params: DocumentIdParams, response: { 200: PolicyVersionSchema, ...Errors4xx(400, 404) } },
  }, async (request) => {
    const d = await find(request.params.documentId);
    return { ...meta(d), text: d.text, clauses: d.clauses };
  });

  r.get('/public/policies/:documentId/versions', {
    schema: { tags: ['policies'], summary: 'Every version of a policy', params: DocumentIdParams, response: { 200: Type.Object({ versions: Type.Array(PolicyVersionMetaSchema) }), ...Errors4xx(400, 404) } },
  }, async (request) => {
    const docs = await app.models.policyVersions.find({ documentId: request.params.documentId }, { text: 0, clauses: 0 }).sort({ version: 1 }).lean<PolicyVersionDoc[]>();
    if (!docs.length) throw ConsentErrors.notFound(`There is no ${request.params.documentId} policy`);
    return { versions: docs.map(meta) };
  });

  r.get('/public/policies/:documentId/versions/:version', {
    schema: { tags: ['policies'], summary: 'One version of a policy, with its clauses', params: VersionParams, response: { 200: PolicyVersionSchema, ...Errors4xx(400, 404) } },
  }, async (request) => {
    const d = await find(request.params.documentId, request.params.version);
    return { ...meta(d), text: d.text, clauses: d.clauses };
  });

  r.get('/public/policies/:documentId/versions/:version/clauses/:clauseId', {
    schema: {
      tags: ['policies'], summary: 'One clause (e.g. 2.4.2(4)) of a policy version, with its sub-clauses', params: ClauseParams,
      response: { 200: Type.Object({ documentId: Type.String(), version: Type.Integer(), clause: ClauseSchema, subClauses: Type.Array(ClauseSchema) }), ...Errors4xx(400, 404) },
    },
  }, async (request) => {
    const d = await find(request.params.documentId, request.params.version);
    const [clause, ...subClauses] = clauseWithChildren(d.clauses, request.params.clauseId);
    if (!clause) throw ConsentErrors.notFound(`Version ${d.version} of the ${d.documentId} policy has no clause ${request.params.clauseId}`);
    return { documentId: d.documentId, version: d.version, clause, subClauses };
  });

  r.get('/admin/policies/:documentId/versions/:version/acceptance', {
    preHandler: app.requireRole('operator', 'dpo'),
    schema: {
      tags: ['policies'], 'x-pipp-roles': ['operator', 'dpo'], summary: 'How many subjects accepted a version, and how (VI)', security: [{ bearer: [] }],
      params: VersionParams,
      response: {
        200: Type.Object({
          documentId: Type.String(), version: Type.Integer(), restrictsRights: Type.Boolean(),
          subjects: Type.Integer({ description: 'Subjects with any consent record' }),
          acceptedExpressly: Type.Integer(), acceptedByContinuedUse: Type.Integer(),
          notYet: Type.Integer({ description: 'For a rights-restricting version: subjects whose processing under it waits for their express consent' }),
        }),
        ...Errors4xx(400, 401, 403, 404),
      },
    },
  }, async (request) => {
    const { documentId, version } = request.params;
    const v = app.projection.document(documentId)?.versions.find((x) => x.version === version);
    if (!v) throw ConsentErrors.notFound(`The ${documentId} policy has no version ${version}`);
    let subjects = 0; let express = 0; let implied = 0;
    for (const [, s] of app.projection.entries()) {
      subjects += 1;
      const a = s.acceptances.get(documentId);
      if ((a?.express ?? 0) >= version) express += 1;
      else if ((a?.any ?? 0) >= version) implied += 1;
    }
    return { documentId, version, restrictsRights: v.restrictsRights, subjects, acceptedExpressly: express, acceptedByContinuedUse: implied, notYet: subjects - express - implied };
  });

  r.post('/admin/policies/:documentId/versions', {
    preHandler: app.requireRole('dpo'),
    schema: {
      tags: ['policies'], 'x-pipp-roles': ['dpo'], summary: 'Publish the next version of a policy (DPO)', security: [{ bearer: [] }],
      params: DocumentIdParams, body: PublishBodySchema,
      response: { 201: PolicyVersionMetaSchema, ...Errors4xx(400, 401, 403, 409, 422) },
    },
  }, async (request, reply) => {
    const b = request.body;
    const doc = await app.policies.publish({
      documentId: request.params.documentId, title: b.title, appliesTo: b.appliesTo, text: b.text, summary: b.summary,
      changes: b.changes, restrictsRights: b.restrictsRights, affectedPurposes: b.affectedPurposes, terms: b.terms,
      effectiveAt: b.effectiveAt ? new Date(b.effectiveAt) : undefined, noticeDays: b.noticeDays,
    }, { role: 'dpo', id: request.user.sub });
    await app.audit(request, 'policy.published', { target: `${doc.documentId}@${doc.version}` });
    return reply.code(201).send(meta(doc));
  });
}
