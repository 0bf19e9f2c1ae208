import { DataCategorySchema, PurposeId, RecordId, isSensitive, type DataCategory, VisibleText } from '@pipp/contracts';
import { Errors } from '@pipp/service-kit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config.js';
import { applyConfirmation, missingConfirmations, splitBySensitivity } from '../../domain/indirect.js';
import { DsErrors } from '../../errors.js';
import type { IndirectDoc } from '../../plugins/models.js';
import { ActorOut, BasisOut, ClaimedBasisSchema, SubjectParams, actorOf, assertFunctionOpen, decide, errors, iso, newId } from '../common.js';
import { recordedBasis } from '../shares/index.js';

// Keys by pattern: TypeBox's Record checks a key's pattern, not its length.
const Value = Type.Record(Type.String({ pattern: '^.{1,64}$' }), Type.Union([Type.String({ maxLength: 4000 }), Type.Number(), Type.Boolean(), Type.Null()]), { maxProperties: 64, additionalProperties: false });

const IndirectIn = Type.Object({
  source: Type.Object({
    name: VisibleText(300, { description: 'Legal name of the third party the PI comes from' }),
    recipientId: Type.Optional(RecordId),
  }, { additionalProperties: false }),
  purpose: PurposeId,
  functionId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9][a-z0-9-]*$' })),
  basis: Type.Optional(ClaimedBasisSchema),
  confirmation: Type.Optional(Type.Object({
    documentRef: Type.Optional(VisibleText(256)),
    subjectConsented: Type.Optional(Type.Boolean()),
    lawfulSource: Type.Optional(Type.Boolean()),
    liabilityAccepted: Type.Optional(Type.Boolean()),
    signatory: Type.Optional(VisibleText(200)),
    signedAt: Type.Optional(Type.String({ format: 'date-time' })),
  }, { additionalProperties: false, description: "The source's written confirmation (policy 2.4.2(3))" })),
  items: Type.Array(Type.Object({ category: DataCategorySchema, data: Value }, { additionalProperties: false }), { minItems: 1, maxItems: 32 }),
}, { additionalProperties: false });

const ItemOut = Type.Object({ category: Type.String(), status: Type.String(), sensitive: Type.Boolean(), data: Type.Optional(Value) });
const IndirectOut = Type.Object({
  id: Type.String(), subjectId: Type.String(), source: Type.Object({ name: Type.String(), recipientId: Type.Optional(Type.String()) }),
  purpose: Type.String(), basis: BasisOut,
  confirmation: Type.Object({ documentRef: Type.String(), subjectConsented: Type.Boolean(), lawfulSource: Type.Boolean(), liabilityAccepted: Type.Boolean(), signatory: Type.Optional(Type.String()), signedAt: Type.String() }),
  items: Type.Array(ItemOut), receivedBy: ActorOut, receivedAt: Type.String(),
});

const Params = Type.Object({ subjectId: SubjectParams.properties.subjectId, collectionId: RecordId }, { additionalProperties: false });
const SENSITIVE_STATES = new Set(['awaiting-confirmation', 'declined']);

/** PI received from third parties (policy 2.4.2(3), 2.4.2(2); PIPL art. 29). */
export default async function indirectRoutes(fastify: FastifyInstance, _opts: { config: Config }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { indirect } = app.models;

  const view = (d: IndirectDoc, withData: boolean): Static<typeof IndirectOut> => ({
    id: d._id, subjectId: d.subjectId, source: d.source, purpose: d.purpose, basis: d.basis ?? null,
    confirmation: { ...d.confirmation, signedAt: iso(d.confirmation.signedAt)! },
    items: d.items.map((i) => ({
      category: i.category, status: i.status, sensitive: isSensitive(i.category),
      ...(withData && i.sealed ? { data: JSON.parse(app.sealer.open(i.sealed)) as Static<typeof Value> } : {}),
    })),
    receivedBy: d.receivedBy, receivedAt: iso(d.receivedAt)!,
  });

  /**
   * Accepts PI about the subject received from a third party, only with the source's written
   * confirmation that the subject consented and that its source is lawful (and that it bears liability),
   * and only if the consent service allows the purpose it will serve (2.4.2(2)). Non-sensitive
   * categories are usable at once; sensitive ones stay unusable until the subject confirms them. The
   * subject is informed (incident service). Roles: service, operator, dpo.
   * Errors: 422 PIPP_INDIRECT_COLLECTION_REFUSED (listing the missing confirmations), 403
   * PIPP_SHARING_REFUSED when consent denies the purpose, 403 PIPP_FUNCTION_SHUT_DOWN, 410
   * PIPP_SUBJECT_ERASED once the subject's account erasure began (policy 4.2, PIPL art. 47), 503.
   */
  app.post('/subjects/:subjectId/indirect-collections', {
    preHandler: app.requireRole('service', 'operator', 'dpo'),
    schema: { tags: ['indirect-collection'], params: SubjectParams, body: IndirectIn, response: { 201: IndirectOut, ...errors(400, 401, 403, 410, 422, 503) } },
  }, async (request, reply) => {
    const { subjectId } = request.params;
    const b = request.body;
    await app.erasedSubjects.refuseErased([subjectId]); // nothing more about an erased subject (4.2)
    await assertFunctionOpen(app, b.functionId);
    const missing = missingConfirmations(b.confirmation);
    if (missing.length) {
      throw DsErrors.indirectRefused(`PI from ${b.source.name} is accepted only with its written confirmation; missing: ${missing.join('; ')}`, { clause: '2.4.2(3)' });
    }
    const categories = [...new Set(b.items.map((i) => i.category))] as DataCategory[];
    if (categories.length !== b.items.length) throw Errors.validation('each category appears once in items', { details: [{ path: '/body/items', message: 'duplicate category' }] });
    const decision = await decide(app, {
      subjectId, service: 'data-sharing', purpose: b.purpose, categories,
      ...(b.functionId ? { functionId: b.functionId } : {}), ...(b.basis ? { legalBasis: b.basis } : {}),
    });
    if (!decision.allowed) {
      throw DsErrors.sharingRefused(`PI obtained from a third party is used only for a purpose the subject consented to in advance (2.4.2(2)): ${decision.reason}`, { clause: decision.clause || '2.4.2(2)' });
    }
    const { awaitingConfirmation } = splitBySensitivity(categories);
    const c = b.confirmation!;
    const id = newId('ind');
    const doc: Omit<IndirectDoc, 'held'> = {
      _id: id, subjectId, source: b.source, purpose: b.purpose, ...(b.functionId ? { functionId: b.functionId } : {}),
      confirmation: { documentRef: c.documentRef!, subjectConsented: true, lawfulSource: true, liabilityAccepted: true, ...(c.signatory ? { signatory: c.signatory } : {}), signedAt: new Date(c.signedAt!) },
      items: b.items.map((i) => ({ category: i.category, status: awaitingConfirmation.includes(i.category) ? 'awaiting-confirmation' as const : 'usable' as const, sealed: app.sealer.seal(JSON.stringify(i.data)) })),
      basis: recordedBasis(decision, b.basis) as IndirectDoc['basis'], receivedBy: actorOf(request), receivedAt: new Date(), rev: 0,
    };
    const body = awaitingConfirmation.length
      ? `We received information about you from ${b.source.name} (${categories.join(', ')}), which confirmed in writing that you consented. We will not use the sensitive part (${awaitingConfirmation.join(', ')}) unless you confirm it; you can also decline it and we delete it.`
      : `We received information about you from ${b.source.name} (${categories.join(', ')}), which confirmed in writing that you consented. You can see it in your data-sharing records.`;
    // Insert, then look at the erasure mark again: the record is taken back when the account erasure
    // began during the write (plugins/erased-subjects.ts). Its notice to the subject, if the relay
    // published it meanwhile, goes to the incident service, which keeps erased-subject marks of its own.
    const created = await app.erasedSubjects.recordUnlessErased([subjectId], 'indirect collection', () => app.outbox.insert(indirect, { ...doc, held: null }, [app.outbox.entry('privacy.notification.requested', {
      subject: subjectId,
      payload: {
        notificationId: `${id}-notice`, kind: 'general', requestedBy: 'data-sharing', audience: { subjectIds: [subjectId] },
        title: 'We received information about you from a third party', body,
        elements: { source: b.source.name, categories: categories.join(', '), awaitingConfirmation: awaitingConfirmation.join(', '), collectionId: id },
        clause: '2.4.2(3)',
      },
    })]), () => indirect.deleteOne({ _id: id }));
    return reply.code(201).send(view(created.toObject() as IndirectDoc, false));
  });

  /** What third parties gave us about the subject, with the data itself (subject, operator, dpo). */
  app.get('/subjects/:subjectId/indirect-collections', {
    preHandler: [app.requireSubject('subjectId', ['operator', 'dpo']), app.erasedSubjects.guardReads],
    schema: { tags: ['indirect-collection'], params: SubjectParams, response: { 200: Type.Object({ collections: Type.Array(IndirectOut) }), ...errors(400, 401, 403, 410) } },
  }, async (request) => {
    const docs = await indirect.find({ subjectId: request.params.subjectId, held: null }).sort({ receivedAt: -1 }).limit(500).lean();
    return { collections: docs.map((d) => view(d, true)) };
  });

  /**
   * The subject's explicit answer about sensitive PI received indirectly: confirmed categories become
   * usable; declined ones are deleted at once. Only the subject themselves (2.4.2(3) "your clear
   * confirmation"). 404 when unknown; 409 when it changed meanwhile.
   */
  app.post('/subjects/:subjectId/indirect-collections/:collectionId/confirmations', {
    preHandler: app.requireSubject('subjectId', []),
    schema: {
      tags: ['indirect-collection'], params: Params,
      body: Type.Object({
        confirm: Type.Array(DataCategorySchema, { maxItems: 32, uniqueItems: true, default: [] }),
        decline: Type.Array(DataCategorySchema, { maxItems: 32, uniqueItems: true, default: [] }),
      }, { additionalProperties: false }),
      response: { 200: IndirectOut, ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request) => {
    const { subjectId, collectionId } = request.params;
    const doc = await indirect.findOne({ _id: collectionId, subjectId, held: null }).lean();
    if (!doc) throw Errors.notFound('No such indirect collection');
    const both = request.body.confirm.filter((c) => request.body.decline.includes(c));
    if (both.length) throw Errors.validation(`a category cannot be both confirmed and declined: ${both.join(', ')}`);
    const result = applyConfirmation(doc.items, request.body);
    const items = result.items.map((i, n) => ({
      ...doc.items[n]!, status: i.status,
      ...(i.status === 'declined' ? { sealed: null } : {}),
      ...(result.confirmed.includes(i.category) || result.declined.includes(i.category) ? { decidedAt: new Date() } : {}),
    }));
    // '+_outbox': no projection in findAndModify (FerretDB 1.24 does not implement it).
    const updated = await indirect.findOneAndUpdate({ _id: doc._id, rev: doc.rev }, { $set: { items }, $inc: { rev: 1 } }, { new: true }).select('+_outbox').lean();
    if (!updated) throw DsErrors.conflict();
    return view(updated, true);
  });

  /**
   * The usable data of an indirect collection, for processing (service, operator, dpo). Asking for a
   * sensitive category the subject has not confirmed is refused: 409 PIPP_AWAITING_SUBJECT_CONFIRMATION
   * (2.4.2(3)); without `categories`, only usable items are returned.
   */
  app.get('/subjects/:subjectId/indirect-collections/:collectionId/data', {
    preHandler: [app.requireRole('service', 'operator', 'dpo'), app.erasedSubjects.guardReads],
    schema: {
      tags: ['indirect-collection'], params: Params,
      querystring: Type.Object({ categories: Type.Optional(Type.Array(DataCategorySchema, { maxItems: 32 })) }, { additionalProperties: false }),
      response: { 200: Type.Object({ items: Type.Array(Type.Object({ category: Type.String(), data: Value })) }), ...errors(400, 401, 403, 404, 409, 410) },
    },
  }, async (request) => {
    const { subjectId, collectionId } = request.params;
    const doc = await indirect.findOne({ _id: collectionId, subjectId, held: null }).lean();
    if (!doc) throw Errors.notFound('No such indirect collection');
    const wanted = request.query.categories;
    if (wanted) {
      const blocked = doc.items.filter((i) => wanted.includes(i.category) && SENSITIVE_STATES.has(i.status));
      if (blocked.length) {
        throw DsErrors.awaitingConfirmation(`sensitive PI received from ${doc.source.name} is unusable until the subject confirms it explicitly: ${blocked.map((i) => `${i.category} (${i.status})`).join(', ')}`, { clause: '2.4.2(3)' });
      }
    }
    const items = doc.items.filter((i) => i.status === 'usable' && i.sealed && (!wanted || wanted.includes(i.category)));
    return { items: items.map((i) => ({ category: i.category, data: JSON.parse(app.sealer.open(i.sealed!)) as Static<typeof Value> })) };
  });
}
