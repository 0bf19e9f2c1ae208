import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DataCategorySchema, LEGAL_BASIS_IDS, RecordId, SubjectId, Timestamp, VisibleText } from '@pipp/contracts';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { Config } from '../../config.js';
import { DAY_MS } from '../../domain/holds.js';
import { RetentionErrors } from '../../errors.js';
import { actorOf } from '../../plugins/audit.js';
import type { LegalHoldDoc } from '../../plugins/models.js';
import { ActorSchema, errorResponses } from '../schemas.js';

const NonConsentBasis = Type.Union(LEGAL_BASIS_IDS.filter((b) => b !== 'consent').map((b) => Type.Literal(b)));

const HoldView = Type.Object({
  holdId: RecordId,
  subjectId: SubjectId,
  categories: Type.Array(DataCategorySchema, { description: 'Empty: every category' }),
  mode: Type.Union([Type.Literal('isolate'), Type.Literal('block')]),
  legalBasis: NonConsentBasis,
  evidenceRef: Type.String(),
  until: Timestamp,
  status: Type.Union([Type.Literal('active'), Type.Literal('released')]),
  createdAt: Timestamp,
  createdBy: ActorSchema,
  releasedAt: Type.Optional(Timestamp),
});

function holdView(h: LegalHoldDoc): Static<typeof HoldView> {
  return {
    holdId: h._id, subjectId: h.subjectId, categories: h.categories, mode: h.mode, legalBasis: h.legalBasis, evidenceRef: h.evidenceRef,
    until: h.until.toISOString(), status: h.status, createdAt: h.createdAt.toISOString(), createdBy: h.createdBy, ...(h.releasedAt ? { releasedAt: h.releasedAt.toISOString() } : {}),
  };
}

/** `privacy.legal-hold.changed` for a hold as placed or released (policy 4.1; keyed by the subject). */
const holdChanged = (app: FastifyInstance, h: LegalHoldDoc) => app.outbox.entry('privacy.legal-hold.changed', {
  subject: h.subjectId,
  payload: {
    holdId: h._id, subjectId: h.subjectId, categories: h.categories, mode: h.mode, legalBasis: h.legalBasis, evidenceRef: h.evidenceRef,
    until: h.until.toISOString(), status: h.status,
  },
});

/**
 * Legal holds on one subject's PI (policy 4.1 "with the exceptions stipulated by laws and
 * regulations", 2.4.2(4)i/iv, PIPL art. 47): `/v1/retention/admin/legal-holds…`. The DPO places and
 * releases them (audited); operators read them. `isolate`: erasures proceed but the held categories are
 * kept isolated until `until`; `block`: erasures of them are refused (code PIPP_ERASURE_LEGAL_HOLD).
 * A hold placed while an erasure of the subject is under way reaches it: the participants not yet
 * done keep the held categories isolated until `until` (either mode; `appliedTo` lists the requests).
 * A release reaches them too (`releasedFrom`), and what is kept under the hold is purged now.
 * `until` lies in the future and at most `LEGAL_HOLD_MAX_DAYS` ahead (PI is kept for the shortest time
 * necessary, 5.1: a hold has a real end, renewed if the law asks for longer); 400 PIPP_BAD_TIME otherwise.
 */
const legalHolds: FastifyPluginAsyncTypebox<{ config: Pick<Config, 'LEGAL_HOLD_MAX_DAYS'> }> = async (app, opts) => {
  app.post('/admin/legal-holds', {
    preHandler: app.requireRole('dpo'),
    schema: {
      summary: 'Place a legal hold on a subject\'s PI (dpo)', tags: ['legal-holds'],
      body: Type.Object({
        subjectId: SubjectId,
        categories: Type.Optional(Type.Array(DataCategorySchema, { maxItems: 32, uniqueItems: true })),
        mode: Type.Optional(Type.Union([Type.Literal('isolate'), Type.Literal('block')], { default: 'isolate' })),
        legalBasis: NonConsentBasis,
        evidenceRef: VisibleText(512, { description: 'The statute, order or case number (no PI)' }),
        until: Type.String({ format: 'date-time' }),
      }, { additionalProperties: false }),
      response: {
        201: Type.Composite([HoldView, Type.Object({ appliedTo: Type.Array(RecordId, { description: 'Open erasure requests of the subject the hold reached' }) })]),
        ...errorResponses(400),
      },
    },
  }, async (request, reply) => {
    const b = request.body;
    const until = new Date(b.until);
    if (until <= new Date()) throw RetentionErrors.badTime('until must be in the future');
    const latest = new Date(Date.now() + opts.config.LEGAL_HOLD_MAX_DAYS * DAY_MS);
    if (until > latest) throw RetentionErrors.badTime(`A legal hold runs at most ${opts.config.LEGAL_HOLD_MAX_DAYS} days: until ${latest.toISOString()} at the latest; renew it if the law asks for longer`, { clause: '5.1' });
    const doc: LegalHoldDoc = {
      _id: `lh-${randomUUID()}`, subjectId: b.subjectId, categories: b.categories ?? [], mode: b.mode ?? 'isolate', legalBasis: b.legalBasis,
      evidenceRef: b.evidenceRef, until, status: 'active', createdAt: new Date(), createdBy: actorOf(request.user),
    };
    await app.outbox.insert(app.store.holds, doc as never, [holdChanged(app, doc)]);
    const appliedTo = await app.erasures.applyHold({ ...doc, holdId: doc._id });
    await app.audit({ actor: actorOf(request.user), action: 'legal-hold.create', target: { type: 'legal-hold', id: doc._id }, subjectId: b.subjectId, clause: '4.1', details: { mode: doc.mode, legalBasis: doc.legalBasis, categories: doc.categories, appliedTo } });
    return reply.code(201).send({ ...holdView(doc), appliedTo });
  });

  app.get('/admin/legal-holds', {
    preHandler: app.requireRole('operator', 'dpo'),
    schema: {
      summary: 'Legal holds (operator, dpo)', tags: ['legal-holds'],
      querystring: Type.Object({ subjectId: Type.Optional(SubjectId), status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('released')])) }, { additionalProperties: false }),
      response: { 200: Type.Object({ items: Type.Array(HoldView) }), ...errorResponses(400) },
    },
  }, async (request) => {
    const q = request.query;
    const docs = await app.store.holds.find({ ...(q.subjectId ? { subjectId: q.subjectId } : {}), ...(q.status ? { status: q.status } : {}) }).sort({ createdAt: -1 }).limit(500).lean();
    return { items: docs.map(holdView) };
  });

  app.post('/admin/legal-holds/:holdId/release', {
    preHandler: app.requireRole('dpo'),
    schema: {
      summary: 'Release a legal hold (dpo)', tags: ['legal-holds'], params: Type.Object({ holdId: RecordId }),
      response: {
        200: Type.Composite([HoldView, Type.Object({ releasedFrom: Type.Array(RecordId, { description: 'Open erasure requests of the subject that no longer keep what it held' }) })]),
        ...errorResponses(404, 409),
      },
    },
  }, async (request) => {
    const now = new Date();
    const held = await app.store.holds.findOne({ _id: request.params.holdId, status: 'active' }).lean();
    const doc = held && (await app.outbox.update(app.store.holds, { _id: held._id, status: 'active' }, { $set: { status: 'released', releasedAt: now, releasedBy: actorOf(request.user) } }, [
      holdChanged(app, { ...held, status: 'released' }),
    ]))?.toObject() as LegalHoldDoc | undefined;
    if (!doc) {
      const exists = await app.store.holds.exists({ _id: request.params.holdId });
      if (exists) throw RetentionErrors.holdReleased(`Hold ${request.params.holdId} is already released`);
      throw RetentionErrors.holdNotFound(`No legal hold ${request.params.holdId}`);
    }
    const releasedFrom = await app.erasures.releaseHold({ ...doc, holdId: doc._id }, now);
    await app.audit({ actor: actorOf(request.user), action: 'legal-hold.release', target: { type: 'legal-hold', id: doc._id }, subjectId: doc.subjectId, clause: '4.1', details: { releasedFrom } });
    return { ...holdView(doc), releasedFrom };
  });
};

export default legalHolds;
