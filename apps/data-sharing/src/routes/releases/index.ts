import { DataCategorySchema, PurposeId, RecordId, type BasisRecord, VisibleText } from '@pipp/contracts';
import { Errors } from '@pipp/service-kit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { createHash } from 'node:crypto';
import type { Config } from '../../config.js';
import { checkAnonymization, type Row } from '../../domain/anonymization.js';
import { checkRecipientEligibility, planShare, sharingClauseOf } from '../../domain/sharing.js';
import { DsErrors } from '../../errors.js';
import type { ReleaseDoc, ShareDoc } from '../../plugins/models.js';
import { ActorOut, BasisOut, ClaimedBasisSchema, actorOf, decide, errors, iso, newId, refusalError } from '../common.js';
import { recordedBasis } from '../shares/index.js';

// The pattern bounds a column name where it is a key too: TypeBox's Record checks keys by pattern only.
const Column = Type.String({ minLength: 1, maxLength: 64, pattern: '^.{1,64}$' });
const Attributes = Type.Object({
  quasiIdentifiers: Type.Array(Column, { maxItems: 64, uniqueItems: true }),
  sensitive: Type.Optional(Type.Array(Column, { maxItems: 64, uniqueItems: true })),
  insensitive: Type.Optional(Type.Array(Column, { maxItems: 256, uniqueItems: true })),
  identifying: Type.Optional(Type.Array(Column, { maxItems: 64, uniqueItems: true })),
}, { additionalProperties: false, description: 'Every column classified (the check fails on an unclassified one)' });
const Cell = Type.Union([Type.String({ maxLength: 1000 }), Type.Number(), Type.Boolean(), Type.Null()]);
const Rows = Type.Array(Type.Record(Column, Cell, { maxProperties: 256, additionalProperties: false }), { minItems: 1, maxItems: 1_000_000, description: 'At most a million rows, and RELEASE_BODY_LIMIT bytes' });

const Report = Type.Object({
  passed: Type.Boolean(), k: Type.Integer(), rows: Type.Integer(), columns: Type.Array(Type.String()), unclassifiedColumns: Type.Array(Type.String()),
  directIdentifiers: Type.Array(Type.Object({ column: Type.String(), reason: Type.String(), detector: Type.Optional(Type.String()), rows: Type.Optional(Type.Integer()) })),
  equivalenceClasses: Type.Integer(), achievedK: Type.Integer(),
  smallestClass: Type.Union([Type.Object({ size: Type.Integer(), classes: Type.Integer() }), Type.Null()]),
  classesBelowK: Type.Integer(), rowsInClassesBelowK: Type.Integer(),
  lDiversity: Type.Array(Type.Object({ attribute: Type.String(), l: Type.Integer() })), reasons: Type.Array(Type.String()),
}, { description: 'The anonymization check (policy 3.4 last paragraph)' });

const ReleaseOut = Type.Object({
  id: Type.String(), recipientId: Type.String(), purpose: Type.String(), name: Type.String(),
  digest: Type.String({ description: 'SHA-256 of the checked rows (canonical JSON): transmit exactly this dataset' }),
  rows: Type.Integer(), outcome: Type.Union([Type.Literal('anonymized'), Type.Literal('personal')]), report: Report,
  subjects: Type.Integer({ description: 'Subjects whose PI was released (personal releases; each has a sharing record)' }),
  basis: BasisOut, createdBy: ActorOut, createdAt: Type.String(),
});

const ReleaseIn = Type.Object({
  recipientId: RecordId,
  purpose: PurposeId,
  name: VisibleText(200),
  attributes: Attributes,
  rows: Rows,
  personal: Type.Optional(Type.Object({
    subjectColumn: Column,
    categories: Type.Array(DataCategorySchema, { minItems: 1, maxItems: 32, uniqueItems: true }),
    basis: Type.Optional(ClaimedBasisSchema),
  }, { additionalProperties: false, description: 'If the dataset fails the check: release it as PI, per subject with consent or a basis (policy 3.1)' })),
}, { additionalProperties: false });

/** Canonical digest of rows: keys sorted, so the same data always gives the same digest. */
export function digestRows(rows: Row[]): string {
  const h = createHash('sha256');
  for (const r of rows) h.update(`${JSON.stringify(Object.keys(r).sort().map((k) => [k, r[k]]))}\n`);
  return h.digest('hex');
}

const MAX_PERSONAL_SUBJECTS = 1000;

/** Anonymized releases of datasets to recipients (policy 3.4 last paragraph, 2.4.2(4) last paragraph). */
export default async function releaseRoutes(fastify: FastifyInstance, opts: { config: Config }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { releases, recipients, shares } = app.models;
  const k = opts.config.ANONYMIZATION_K;
  const limits = { bodyLimit: opts.config.RELEASE_BODY_LIMIT };
  const tooMany = (rows: unknown[]) => {
    if (rows.length > opts.config.RELEASE_MAX_ROWS) throw Errors.payloadTooLarge(`at most ${opts.config.RELEASE_MAX_ROWS} rows per dataset (RELEASE_MAX_ROWS)`);
  };
  const view = (d: ReleaseDoc): Static<typeof ReleaseOut> => ({
    id: d._id, recipientId: d.recipientId, purpose: d.purpose, name: d.name, digest: d.digest, rows: d.rows, outcome: d.outcome,
    report: d.report as Static<typeof Report>, subjects: d.subjects, basis: d.basis ?? null, createdBy: d.createdBy, createdAt: iso(d.createdAt)!,
  });

  /**
   * Runs the anonymization check on a dataset without releasing anything: no direct identifiers, every
   * column classified, k-anonymity ≥ `ANONYMIZATION_K` over the quasi-identifiers; reports the smallest
   * equivalence class. Roles: service, operator, dpo.
   */
  app.post('/releases/checks', {
    ...limits,
    preHandler: app.requireRole('service', 'operator', 'dpo'),
    schema: { tags: ['releases'], body: Type.Object({ attributes: Attributes, rows: Rows }, { additionalProperties: false }), response: { 200: Report, ...errors(400, 401, 403, 413) } },
  }, async (request) => {
    tooMany(request.body.rows);
    return checkAnonymization(request.body.rows as Row[], request.body.attributes, k);
  });

  /**
   * Releases a dataset to a recipient. If it passes the anonymization check it needs no consent
   * (3.4-anonymized) and is recorded with its digest and report (never its rows). If it fails, it is
   * PI: refused (403 PIPP_NOT_ANONYMOUS, with the reasons and the smallest class) unless `personal`
   * names the subject column and categories, and every subject's sharing with this recipient is allowed
   * by consent or the claimed basis (3.1, 3.4); then each subject gets a sharing record. All or nothing.
   * Roles: service, operator, dpo. Errors: 403, 404 unknown recipient, 410 PIPP_SUBJECT_ERASED when the
   * account erasure of a subject in a personal release began (policy 4.2, PIPL art. 47; nothing is
   * recorded, also when the erasure began during the release), 413, 422 ineligible, 503.
   */
  app.post('/releases', {
    ...limits,
    preHandler: app.requireRole('service', 'operator', 'dpo'),
    schema: { tags: ['releases'], body: ReleaseIn, response: { 201: ReleaseOut, ...errors(400, 401, 403, 404, 410, 413, 422, 503) } },
  }, async (request, reply) => {
    const b = request.body;
    tooMany(b.rows);
    const recipient = await recipients.findById(b.recipientId).lean();
    if (!recipient) throw Errors.notFound(`No recipient ${b.recipientId}`);
    const facts = { id: recipient._id, status: recipient.status, country: recipient.country, purposes: recipient.purposes, categories: recipient.categories, attestation: recipient.attestation };
    const rows = b.rows as Row[];
    const report = checkAnonymization(rows, b.attributes, k);
    const base = { _id: newId('rel'), recipientId: recipient._id, purpose: b.purpose, name: b.name, digest: digestRows(rows), rows: rows.length, createdBy: actorOf(request), createdAt: new Date() };
    if (report.passed) {
      const eligible = checkRecipientEligibility({ ...facts, categories: [] }, b.purpose, []);
      if (!eligible.ok) throw refusalError(eligible);
      const doc = await releases.create({ ...base, outcome: 'anonymized', report, subjects: 0, basis: null });
      return reply.code(201).send(view(doc.toObject()));
    }
    if (!b.personal) {
      throw DsErrors.notAnonymous(
        `the dataset fails the anonymization check (smallest equivalence class ${report.achievedK}, k required ${k}); it is PI and needs each subject's consent or a legal basis: ${report.reasons.join('; ')}`,
        { clause: '3.4-anonymized', details: report.reasons.map((r) => ({ path: '/body/rows', message: r })) },
      );
    }
    const p = b.personal;
    const subjectIds = [...new Set(rows.map((r) => r[p.subjectColumn]))];
    if (subjectIds.some((s) => typeof s !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(s))) {
      throw Errors.validation(`every row needs a subject id in column ${p.subjectColumn}`, { details: [{ path: '/body/personal/subjectColumn', message: 'missing or invalid subject ids' }] });
    }
    if (subjectIds.length > MAX_PERSONAL_SUBJECTS) throw Errors.payloadTooLarge(`a personal release covers at most ${MAX_PERSONAL_SUBJECTS} subjects`);
    // Nothing more is shared about a subject whose account erasure began (4.2), before asking consent.
    await app.erasedSubjects.refuseErased(subjectIds as string[]);
    const planned = (subjectIds as string[]).map((subjectId) => ({ subjectId, plan: planShare({ subjectId, recipient: facts, purpose: b.purpose, categories: p.categories, basis: p.basis, homeRegion: opts.config.HOME_REGION, transfer: undefined, requestedBy: request.user.role }) }));
    const firstRefusal = planned.find((x) => !x.plan.ok);
    if (firstRefusal && !firstRefusal.plan.ok) throw refusalError(firstRefusal.plan);
    const decisions = [];
    for (const x of planned) {
      if (!x.plan.ok) continue;
      // A recipient abroad was refused above (no 5.3 ground on a dataset): only the sharing decision remains.
      const d = await decide(app, x.plan.decisions[0]!.request);
      decisions.push({ subjectId: x.subjectId, decision: d });
    }
    const denied = decisions.filter((d) => !d.decision.allowed);
    if (denied.length) {
      throw DsErrors.sharingRefused(`the dataset is PI and ${denied.length} of ${decisions.length} subject(s) gave no consent for this recipient and no admissible basis applies: ${denied[0]!.decision.reason}`, { clause: denied[0]!.decision.clause || '3.1.2' });
    }
    const basis: BasisRecord | null = p.basis ? { kind: 'legal-basis', legalBasis: p.basis.legalBasis, evidenceRef: p.basis.evidenceRef } : null;
    const now = new Date();
    const records: ShareDoc[] = decisions.map(({ subjectId, decision }) => {
      const rb = recordedBasis(decision, p.basis);
      return {
        _id: newId('shr'), subjectId, recipientId: recipient._id, recipientName: recipient.legalName, country: recipient.country, purpose: b.purpose,
        categories: p.categories, basis: rb as BasisRecord, clause: rb?.kind === 'legal-basis' ? sharingClauseOf(rb.legalBasis) : '3.1.2',
        crossBorder: false, releaseId: base._id, requestedBy: actorOf(request), sharedAt: now, held: null,
      };
    });
    // Insert, then look at the erasure marks again (4.2, all or nothing): a subject whose account erasure
    // began meanwhile either has their record found by it (inserted before its mark, so before its
    // read) or is seen here, and the whole release is taken back with a 410 (plugins/erased-subjects.ts).
    const doc = await app.erasedSubjects.recordUnlessErased(records.map((r) => r.subjectId), 'personal release', async () => {
      const created = await releases.create({ ...base, outcome: 'personal', report, subjects: decisions.length, basis });
      await shares.insertMany(records);
      return created;
    }, async () => {
      await shares.deleteMany({ _id: { $in: records.map((r) => r._id) } }); // rare: only when an erasure raced the release
      await releases.deleteOne({ _id: base._id });
    });
    return reply.code(201).send(view(doc.toObject()));
  });

  /** Releases made, newest first (operator, dpo). */
  app.get('/admin/releases', {
    preHandler: app.requireRole('operator', 'dpo'),
    schema: {
      tags: ['releases'],
      querystring: Type.Object({ recipientId: Type.Optional(RecordId), limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ releases: Type.Array(ReleaseOut) }), ...errors(400, 401, 403) },
    },
  }, async (request) => {
    const filter = request.query.recipientId ? { recipientId: request.query.recipientId } : {};
    const docs = await releases.find(filter).sort({ createdAt: -1 }).limit(request.query.limit).lean();
    return { releases: docs.map(view) };
  });
}
