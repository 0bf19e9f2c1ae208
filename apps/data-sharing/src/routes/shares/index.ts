import { DataCategorySchema, PurposeId, RecordId, type BasisRecord, type Decision, VisibleText } from '@pipp/contracts';
import { Errors } from '@pipp/service-kit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { createHash } from 'node:crypto';
import stringify from 'safe-stable-stringify';
import type { Config } from '../../config.js';
import { isCrossBorder } from '../../domain/regions.js';
import { planShare, sharingClauseOf, type ClaimedBasis } from '../../domain/sharing.js';
import { DsErrors } from '../../errors.js';
import type { ShareDoc } from '../../plugins/models.js';
import { ActorOut, BasisOut, ClaimedBasisSchema, SubjectParams, actorOf, assertFunctionOpen, refusalError, decide, errors, iso, newId } from '../common.js';

const TransferIn = Type.Union([
  Type.Object({ ground: Type.Literal('5.3.1'), lawCitation: VisibleText(512, { description: 'The law or regulation that provides for the transfer' }) }, { additionalProperties: false }),
  Type.Object({ ground: Type.Literal('5.3.2') }, { additionalProperties: false, description: "The subject's separate authorization for the recipient's country (asked of consent)" }),
  Type.Object({ ground: Type.Literal('5.3.3'), contractRef: VisibleText(256, { description: 'The contract the subject is party to' }) }, { additionalProperties: false }),
], { description: 'Policy 5.3 ground of a cross-border transfer' });

const ShareIn = Type.Object({
  recipientId: RecordId,
  purpose: Type.Optional(PurposeId),
  categories: Type.Array(DataCategorySchema, { minItems: 1, maxItems: 32, uniqueItems: true }),
  basis: Type.Optional(ClaimedBasisSchema),
  transfer: Type.Optional(TransferIn),
  functionId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9][a-z0-9-]*$' })),
  idempotencyKey: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:-]+$', description: 'Repeat a request safely: the same caller, subject and key return the first record (200) instead of recording twice' })),
}, { additionalProperties: false });

export const ShareOut = Type.Object({
  id: Type.String(),
  subjectId: Type.String(),
  recipientId: Type.String(),
  recipientName: Type.String(),
  country: Type.String(),
  purpose: Type.String(),
  categories: Type.Array(Type.String()),
  basis: BasisOut,
  clause: Type.String({ description: 'Policy clause the sharing rests on (3.1.2 consent, 3.1.1/3.4.x exceptions)' }),
  crossBorder: Type.Boolean(),
  transfer: Type.Optional(Type.Object({
    ground: Type.String(), lawCitation: Type.Optional(Type.String()), contractRef: Type.Optional(Type.String()), basis: BasisOut, clause: Type.String(),
  })),
  releaseId: Type.Optional(Type.String()),
  requestedBy: ActorOut,
  sharedAt: Type.String(),
});

const ShareCreated = Type.Intersect([ShareOut, Type.Object({
  subjectRef: Type.String({ description: "The recipient-specific pseudonym of the subject: send it (never our subject id) with the data; deletion notices use it" }),
})]);

const RecipientHolding = Type.Object({
  recipientId: Type.String(), legalName: Type.String(), country: Type.String(), crossBorder: Type.Boolean(),
  ownPolicy: Type.Object({ applies: Type.Boolean(), url: Type.Optional(Type.String()) }),
  contact: Type.Object({ department: Type.Optional(Type.String()), email: Type.Optional(Type.String()), phone: Type.Optional(Type.String()), address: Type.Optional(Type.String()) }),
  categories: Type.Array(Type.String()), purposes: Type.Array(Type.String()), clauses: Type.Array(Type.String()),
  shares: Type.Integer(), firstSharedAt: Type.String(), lastSharedAt: Type.String(),
});

export function shareView(s: ShareDoc): Static<typeof ShareOut> {
  return {
    id: s._id, subjectId: s.subjectId, recipientId: s.recipientId, recipientName: s.recipientName, country: s.country, purpose: s.purpose,
    categories: s.categories, basis: s.basis ?? null, clause: s.clause, crossBorder: s.crossBorder,
    ...(s.transfer ? { transfer: { ...s.transfer, basis: s.transfer.basis ?? null } } : {}),
    ...(s.releaseId ? { releaseId: s.releaseId } : {}),
    requestedBy: s.requestedBy, sharedAt: iso(s.sharedAt)!,
  };
}

/** The basis a decision rests on, for the record: the decision's own, or the basis that was claimed. */
export function recordedBasis(decision: Decision, claimed: ClaimedBasis | undefined): BasisRecord | null {
  if (decision.basis) return decision.basis;
  return claimed ? { kind: 'legal-basis', legalBasis: claimed.legalBasis, evidenceRef: claimed.evidenceRef } : null;
}

/** Sharing and cross-border transfers of a subject's PI, and "who has my data" (policy 3.1, 3.4, 5.3). */
export default async function shareRoutes(fastify: FastifyInstance, opts: { config: Config }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { shares, recipients, disclosures } = app.models;
  const home = opts.config.HOME_REGION;
  const subjectOrStaff = app.requireSubject('subjectId', ['operator', 'dpo']);
  const subjectStaffOrService = app.requireSubject('subjectId', ['operator', 'dpo', 'service']);

  /**
   * Shares categories of the subject's PI with a recipient for a purpose (default `sharing`), if and
   * only if the consent service allows it: the subject's separate consent for that recipient (3.1.2) or
   * the claimed legal basis with its evidence (3.1.1, 3.4.1–3.4.7). A recipient outside the home region
   * also needs a 5.3 ground (`transfer`), checked the same way. Records what, to whom, when and on what
   * basis. Roles: the subject, operator, dpo, service. With `idempotencyKey`, a repeated request (same
   * caller, subject and key) returns the first record with 200; a concurrent duplicate gets 409; the key
   * reused for a different request gets 422 PIPP_IDEMPOTENCY_KEY_REUSED. A subject may not claim a legal
   * basis or a 5.3.1/5.3.3 transfer ground (422 PIPP_BASIS_INADMISSIBLE).
   * Errors: 403 PIPP_SHARING_REFUSED / PIPP_CROSS_BORDER_REFUSED (with the deciding clause), 422
   * PIPP_RECIPIENT_INELIGIBLE / PIPP_BASIS_INADMISSIBLE, 403 PIPP_FUNCTION_SHUT_DOWN (2.4.2(5)),
   * 404 unknown recipient, 410 PIPP_SUBJECT_ERASED once the subject's account erasure began (policy
   * 4.2, PIPL art. 47: a share racing the erasure is taken back, never left behind it), 503 when the
   * consent service cannot answer (fails closed).
   */
  app.post('/subjects/:subjectId/shares', {
    preHandler: subjectStaffOrService,
    schema: { tags: ['sharing'], params: SubjectParams, body: ShareIn, response: { 200: ShareCreated, 201: ShareCreated, ...errors(400, 401, 403, 404, 409, 410, 422, 503) } },
  }, async (request, reply) => {
    const { subjectId } = request.params;
    const b = request.body;
    const id = b.idempotencyKey
      ? `shr_${createHash('sha256').update(`${request.user.role}\u0000${request.user.sub}\u0000${subjectId}\u0000${b.idempotencyKey}`).digest('hex').slice(0, 32)}`
      : newId('shr');
    // What the key stands for: the request as it is understood, without its key: defaults filled in,
    // categories as a set, in a stable key order (a retry may spell a default out, or reorder).
    const understood = { ...b, purpose: b.purpose ?? 'sharing', categories: [...b.categories].sort(), idempotencyKey: undefined };
    const requestHash = b.idempotencyKey ? createHash('sha256').update(stringify(understood) ?? '').digest('base64url') : undefined;
    /** The first record of this key, as the answer to a repeat; 422 when it answered another request. */
    const replay = (first: ShareDoc) => {
      if (first.requestHash && first.requestHash !== requestHash) {
        throw DsErrors.idempotencyKeyReused(`The idempotency key ${b.idempotencyKey} recorded share ${first._id} for another request; use a new key for a new request`, { details: [{ path: '/body/idempotencyKey', message: 'was used for a different request' }] });
      }
      return reply.code(200).send({ ...shareView(first), subjectRef: app.sealer.subjectRef(first.recipientId, subjectId) });
    };
    // Nothing more is shared about a subject whose account erasure began (4.2): one read by `_id`.
    await app.erasedSubjects.refuseErased([subjectId]);
    if (b.idempotencyKey) {
      const earlier = await shares.findOne({ _id: id, held: null }).lean();
      if (earlier) return replay(earlier);
    }
    await assertFunctionOpen(app, b.functionId);
    const recipient = await recipients.findById(b.recipientId).lean();
    if (!recipient) throw Errors.notFound(`No recipient ${b.recipientId}`);
    const purpose = b.purpose ?? 'sharing';
    const plan = planShare({
      subjectId, recipient: { id: recipient._id, status: recipient.status, country: recipient.country, purposes: recipient.purposes, categories: recipient.categories, attestation: recipient.attestation },
      purpose, categories: b.categories, basis: b.basis, transfer: b.transfer, functionId: b.functionId, homeRegion: home, requestedBy: request.user.role,
    });
    if (!plan.ok) throw refusalError(plan);
    const answers = await Promise.all(plan.decisions.map((d) => decide(app, d.request)));
    const sharing = answers[0]!;
    if (!sharing.allowed) {
      throw DsErrors.sharingRefused(`sharing with ${recipient.legalName} is not allowed: ${sharing.reason}. It needs the subject's separate consent for this recipient (3.1.2) or a legal basis of 3.1.1/3.4 with evidence`, { clause: sharing.clause || '3.1.2' });
    }
    const crossAnswer = answers[1];
    if (crossAnswer && !crossAnswer.allowed) {
      throw DsErrors.transferRefused(`the transfer to ${recipient.country} is not allowed on ground ${b.transfer!.ground}: ${crossAnswer.reason}`, { clause: crossAnswer.clause || b.transfer!.ground });
    }
    const basis = recordedBasis(sharing, b.basis);
    // Insert, then look at the erasure mark again: an erasure that began meanwhile either finds this
    // record (our insert came before its mark, so before its read) or is seen here, and the record is
    // taken back with a 410 (plugins/erased-subjects.ts).
    const doc = await app.erasedSubjects.recordUnlessErased([subjectId], 'share', () => shares.create({
      _id: id, subjectId, recipientId: recipient._id, recipientName: recipient.legalName, country: recipient.country, purpose,
      categories: b.categories, basis, clause: basis?.kind === 'legal-basis' ? sharingClauseOf(basis.legalBasis) : '3.1.2',
      crossBorder: plan.crossBorder,
      ...(crossAnswer && b.transfer ? {
        transfer: {
          ground: b.transfer.ground,
          ...('lawCitation' in b.transfer ? { lawCitation: b.transfer.lawCitation } : {}),
          ...('contractRef' in b.transfer ? { contractRef: b.transfer.contractRef } : {}),
          basis: crossAnswer.basis ?? null, clause: b.transfer.ground,
        },
      } : {}),
      ...(b.functionId ? { functionId: b.functionId } : {}),
      requestedBy: actorOf(request), ...(sharing.policyVersion ? { policyVersion: sharing.policyVersion } : {}), ...(requestHash ? { requestHash } : {}), sharedAt: new Date(), held: null,
    }).catch(async (err: { code?: number }) => {
      // The same idempotency key raced another request that recorded first: answer with its record.
      if (err.code !== 11000 || !b.idempotencyKey) throw err;
      return null;
    }), async (written) => { if (written) await shares.deleteOne({ _id: written._id }); });
    if (!doc) {
      const first = await shares.findOne({ _id: id, held: null }).lean();
      if (!first) throw DsErrors.conflict('The request was recorded meanwhile; repeat it to read the record');
      return replay(first);
    }
    request.log.info({ shareId: doc._id, recipientId: recipient._id, crossBorder: plan.crossBorder }, 'sharing recorded');
    return reply.code(201).send({ ...shareView(doc.toObject()), subjectRef: app.sealer.subjectRef(recipient._id, subjectId) });
  });

  /** The subject's sharing records, newest first (subject, operator, dpo); filters by recipient or cross-border. */
  app.get('/subjects/:subjectId/shares', {
    preHandler: [subjectOrStaff, app.erasedSubjects.guardReads],
    schema: {
      tags: ['sharing'], params: SubjectParams,
      querystring: Type.Object({ recipientId: Type.Optional(RecordId), crossBorder: Type.Optional(Type.Boolean()), limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ shares: Type.Array(ShareOut) }), ...errors(400, 401, 403, 410) },
    },
  }, async (request) => {
    const q = request.query;
    const filter: Record<string, unknown> = { subjectId: request.params.subjectId, held: null };
    if (q.recipientId) filter.recipientId = q.recipientId;
    if (q.crossBorder !== undefined) filter.crossBorder = q.crossBorder;
    const docs = await shares.find(filter).sort({ sharedAt: -1 }).limit(q.limit).lean();
    return { shares: docs.map(shareView) };
  });

  /**
   * "Who has my data": every recipient that received the subject's PI, with what, what for, on which
   * clauses, when, where it is (cross-border), whether its own policy governs it (1.2) and how to reach
   * it; plus how many public disclosures there were (3.3). Subject, operator, dpo.
   */
  app.get('/subjects/:subjectId/recipients', {
    preHandler: [subjectOrStaff, app.erasedSubjects.guardReads],
    schema: {
      tags: ['sharing'], params: SubjectParams,
      response: { 200: Type.Object({ recipients: Type.Array(RecipientHolding), publicDisclosures: Type.Integer() }), ...errors(400, 401, 403, 410) },
    },
  }, async (request) => {
    const { subjectId } = request.params;
    const docs = await shares.find({ subjectId, held: null }).sort({ sharedAt: 1 }).limit(5000).lean();
    const byRecipient = new Map<string, ShareDoc[]>();
    for (const d of docs) byRecipient.set(d.recipientId, [...(byRecipient.get(d.recipientId) ?? []), d]);
    const infos = await recipients.find({ _id: { $in: [...byRecipient.keys()] } }).lean();
    const info = new Map(infos.map((r) => [r._id, r]));
    const uniq = (xs: string[]) => [...new Set(xs)].sort();
    return {
      recipients: [...byRecipient].map(([recipientId, list]) => {
        const r = info.get(recipientId);
        return {
          recipientId, legalName: r?.legalName ?? list[0]!.recipientName, country: r?.country ?? list[0]!.country,
          crossBorder: isCrossBorder(r?.country ?? list[0]!.country, home), ownPolicy: r?.ownPolicy ?? { applies: true }, contact: r?.contact ?? {},
          categories: uniq(list.flatMap((s) => s.categories)), purposes: uniq(list.map((s) => s.purpose)),
          clauses: uniq(list.flatMap((s) => [s.clause, ...(s.transfer ? [s.transfer.clause] : [])])),
          shares: list.length, firstSharedAt: iso(list[0]!.sharedAt)!, lastSharedAt: iso(list[list.length - 1]!.sharedAt)!,
        };
      }),
      publicDisclosures: await disclosures.countDocuments({ subjectId, held: null }),
    };
  });

  /** One sharing record (subject, operator, dpo). */
  app.get('/subjects/:subjectId/shares/:shareId', {
    preHandler: [subjectOrStaff, app.erasedSubjects.guardReads],
    schema: {
      tags: ['sharing'], params: Type.Object({ subjectId: SubjectParams.properties.subjectId, shareId: RecordId }, { additionalProperties: false }),
      response: { 200: ShareOut, ...errors(400, 401, 403, 404, 410) },
    },
  }, async (request) => {
    const doc = await shares.findOne({ _id: request.params.shareId, subjectId: request.params.subjectId, held: null }).lean();
    if (!doc) throw Errors.notFound('No such sharing record');
    return shareView(doc);
  });
}
