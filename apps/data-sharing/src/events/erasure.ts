import type { DataCategory, EventEnvelope, ErasureScope } from '@pipp/contracts';
import type { FastifyInstance } from 'fastify';
import { createHash } from 'node:crypto';
import { holdFor, planShareErasure, recordFate, type LegalHold } from '../domain/erasure.js';
import { subjectDocuments } from '@pipp/service-kit';
import type { ErasureDoc, Held } from '../plugins/models.js';

/**
 * This service's part of the erasure saga (policy 4.1, 4.2 and its recipients paragraph; PIPL art.
 * 47): on `privacy.erasure.requested` it erases the subject's sharing records, public-disclosure
 * records, PI received from third parties and data the subject supplied about other people, keeps
 * what a legal hold requires (isolated, with basis and purge date), sends every recipient that
 * received the subject's PI a deletion notice (except those holding the subject's independent
 * authorization, recorded as not asked), and replies `privacy.erasure.participant-replied` with counts,
 * what was kept and why, and `pendingRecipients`. When the last recipient acknowledges, it replies
 * again for the same request so retention can close it.
 *
 * Nothing written after the plan escapes it: an account erasure marks the subject erased before it reads
 * (`app.erasedSubjects`), and every writer checks the mark after its insert.
 *
 * Crash-safe without transactions: the plan (ids) is stored first, applying it is idempotent, and the
 * reply goes out through the outbox of the erasure document, guarded by a revision counter so replies
 * computed concurrently never go out of order.
 */

type ErasurePayload = EventEnvelope<'privacy.erasure.requested'>['payload'];

const digest = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32);
const heldOf = (h: LegalHold): Held => ({ legalBasis: h.legalBasis, evidenceRef: h.evidenceRef, purgeAt: new Date(h.purgeAt), since: new Date() });

interface Plan {
  eraseShares: string[];
  trimShares: { id: string; categories: DataCategory[] }[];
  holdShares: { id: string; hold: LegalHold }[];
  eraseDisclosures: string[];
  holdDisclosures: { id: string; hold: LegalHold }[];
  eraseIndirect: string[];
  trimIndirect: { id: string; remove: DataCategory[] }[];
  holdIndirect: { id: string; hold: LegalHold }[];
  eraseOtherPeople: string[];
  eraseIndependent: string[];
  notify: { recipientId: string; categories: DataCategory[]; shareIds: string[] }[];
  notAsked: { recipientId: string; categories: DataCategory[]; authorizationId: string }[];
}

/**
 * Finds a subject's documents in each collection an erasure plans over, together with the other
 * erasures in hand (one `$in` query per collection for all of them; see the kit's `subjectLookup`).
 */
export function erasureLookups(app: FastifyInstance) {
  const m = app.models;
  return {
    // The fields each plan reads (none: whole documents).
    shares: subjectDocuments(m.shares, ['recipientId', 'categories', 'held']), independent: subjectDocuments(m.independent),
    disclosures: subjectDocuments(m.disclosures, ['categories', 'held']), indirect: subjectDocuments(m.indirect, ['items', 'held']),
    otherPeople: subjectDocuments(m.otherPeople, ['categories']),
  };
}
export type ErasureLookups = ReturnType<typeof erasureLookups>;

async function makePlan(lookups: ErasureLookups, p: ErasurePayload): Promise<{ plan: Plan; kept: ErasureDoc['kept']; counts: ErasureDoc['counts']; recipients: ErasureDoc['recipients'] }> {
  const scope = p.scope as ErasureScope;
  const holds = p.legalHolds as LegalHold[];
  // Records kept by law are normally out of reach; a purge request (their purge date came) takes them too.
  const now = Date.now();
  const live = (d: { held?: Held | null }) => !d.held || (Boolean(p.purgeIsolated) && d.held.purgeAt instanceof Date && d.held.purgeAt.getTime() <= now);
  const [shares, independent, disclosures, indirect, otherPeople] = await Promise.all([
    lookups.shares.load(p.subjectId).then((ds) => ds.filter(live)),
    lookups.independent.load(p.subjectId),
    lookups.disclosures.load(p.subjectId).then((ds) => ds.filter(live)),
    lookups.indirect.load(p.subjectId).then((ds) => ds.filter(live)),
    lookups.otherPeople.load(p.subjectId),
  ]);
  const sharePlan = planShareErasure(scope, holds, shares.map((s) => ({ id: s._id, recipientId: s.recipientId, categories: s.categories })), new Map(independent.map((i) => [i.recipientId, i._id])));
  // Recipients were told at the original erasure: a purge of kept records or a re-application after a
  // backup restore (4.2-backups) erases here again without notifying them a second time.
  const quiet = Boolean(p.purgeIsolated || p.restoreId);
  const plan: Plan = {
    eraseShares: sharePlan.erase, trimShares: sharePlan.trim, holdShares: sharePlan.hold,
    eraseDisclosures: [], holdDisclosures: [], eraseIndirect: [], trimIndirect: [], holdIndirect: [],
    eraseOtherPeople: [], eraseIndependent: scope.kind === 'account' ? independent.map((i) => i._id) : [],
    notify: quiet ? [] : sharePlan.notify, notAsked: quiet ? [] : sharePlan.notAsked,
  };
  for (const d of disclosures) {
    const f = recordFate(scope, holds, 'sharing-record', d.categories);
    if (!f.inScope) continue;
    if (f.hold) plan.holdDisclosures.push({ id: d._id, hold: f.hold }); else plan.eraseDisclosures.push(d._id);
  }
  for (const r of indirect) {
    const cats = r.items.map((i) => i.category);
    const whole = scope.kind === 'account' || scope.categories.includes('indirect-collection');
    const f = recordFate(scope, holds, 'indirect-collection', cats);
    if (!f.inScope) continue;
    const remove = whole ? cats : cats.filter((c) => scope.kind === 'categories' && scope.categories.includes(c));
    if (f.hold) plan.holdIndirect.push({ id: r._id, hold: f.hold });
    else if (remove.length < cats.length) plan.trimIndirect.push({ id: r._id, remove });
    else plan.eraseIndirect.push(r._id);
  }
  for (const o of otherPeople) {
    if (scope.kind === 'account' || o.categories.some((c) => scope.categories.includes(c))) plan.eraseOtherPeople.push(o._id);
  }
  const kept: ErasureDoc['kept'] = [];
  const heldCount = plan.holdShares.length + plan.holdDisclosures.length + plan.holdIndirect.length;
  for (const [category, n] of [['sharing-record', plan.holdShares.length + plan.holdDisclosures.length], ['indirect-collection', plan.holdIndirect.length]] as const) {
    if (!n) continue;
    const h = category === 'sharing-record' ? holdFor(holds, 'sharing-record') ?? plan.holdDisclosures[0]?.hold : plan.holdIndirect[0]?.hold;
    if (h) kept.push({ category: h.category, legalBasis: h.legalBasis, purgeAt: new Date(h.purgeAt).toISOString(), reason: `${n} ${category} record(s) kept by law (${h.evidenceRef}), isolated from processing until purge`.slice(0, 500) });
  }
  const erased = plan.eraseShares.length + plan.trimShares.length + plan.eraseDisclosures.length + plan.eraseIndirect.length + plan.trimIndirect.length
    + plan.eraseOtherPeople.length + plan.eraseIndependent.length;
  const evidence = new Map(independent.map((i) => [i._id, i.evidenceRef]));
  const recipients: ErasureDoc['recipients'] = [
    ...plan.notify.map((n) => ({ recipientId: n.recipientId, noticeId: `${p.requestId}:${n.recipientId}`, status: 'notified' as const, categories: n.categories })),
    ...plan.notAsked.map((n) => ({ recipientId: n.recipientId, status: 'not-asked' as const, categories: n.categories, authorizationDigest: digest(evidence.get(n.authorizationId) ?? '') })),
  ];
  return { plan, kept, counts: { erased, anonymized: 0, kept: heldCount }, recipients };
}

async function applyPlan(app: FastifyInstance, doc: ErasureDoc): Promise<void> {
  const m = app.models;
  const plan = doc.plan as unknown as Plan;
  const now = new Date();
  for (const n of plan.notify) {
    const id = `${doc._id}:${n.recipientId}`;
    await m.notices.updateOne({ _id: id }, {
      $setOnInsert: {
        _id: id, requestId: doc._id, subjectId: doc.subjectId, subjectRef: app.sealer.subjectRef(n.recipientId, doc.subjectId), recipientId: n.recipientId,
        categories: n.categories, shareIds: n.shareIds, ground: doc.ground, status: 'pending', attempts: 0, nextAttemptAt: now, leaseUntil: new Date(0),
        history: [], createdAt: now,
      },
    }, { upsert: true });
  }
  if (plan.eraseShares.length) await m.shares.deleteMany({ _id: { $in: plan.eraseShares } });
  for (const t of plan.trimShares) await m.shares.updateOne({ _id: t.id }, { $set: { categories: t.categories } });
  for (const h of plan.holdShares) await m.shares.updateOne({ _id: h.id }, { $set: { held: heldOf(h.hold) } });
  if (plan.eraseDisclosures.length) await m.disclosures.deleteMany({ _id: { $in: plan.eraseDisclosures } });
  for (const h of plan.holdDisclosures) await m.disclosures.updateOne({ _id: h.id }, { $set: { held: heldOf(h.hold) } });
  if (plan.eraseIndirect.length) await m.indirect.deleteMany({ _id: { $in: plan.eraseIndirect } });
  for (const h of plan.holdIndirect) await m.indirect.updateOne({ _id: h.id }, { $set: { held: heldOf(h.hold) } });
  for (const t of plan.trimIndirect) {
    const r = await m.indirect.findById(t.id).lean();
    if (!r) continue;
    const items = r.items.filter((i) => !t.remove.includes(i.category));
    if (items.length) await m.indirect.updateOne({ _id: t.id }, { $set: { items }, $inc: { rev: 1 } });
    else await m.indirect.deleteOne({ _id: t.id });
  }
  if (plan.eraseOtherPeople.length) await m.otherPeople.deleteMany({ _id: { $in: plan.eraseOtherPeople } });
  if (plan.eraseIndependent.length) await m.independent.deleteMany({ _id: { $in: plan.eraseIndependent } });
  await m.erasures.updateOne({ _id: doc._id, status: 'planned' }, { $set: { status: 'applied', appliedAt: new Date() } });
  if (plan.notify.length) app.notices.kick();
}

/**
 * Replies to the saga for a request with the current pending recipients. `force` (a delivery of the
 * request) always replies; otherwise (an acknowledgment) only when the pending list changed. The
 * reply and the revision bump are one write; a concurrent writer makes this one recompute.
 */
export async function replyToSaga(app: FastifyInstance, requestId: string, opts: { attempt?: number; force: boolean }): Promise<void> {
  const { erasures, notices } = app.models;
  for (let i = 0; i < 20; i += 1) {
    const doc = await erasures.findById(requestId).lean();
    if (!doc || doc.status !== 'applied') return;
    const noticeIds = doc.recipients.filter((r) => r.status === 'notified').map((r) => r.noticeId!);
    const open = noticeIds.length ? await notices.find({ _id: { $in: noticeIds }, status: { $ne: 'acknowledged' } }, { recipientId: 1 }).lean() : [];
    const pending = open.map((n) => n.recipientId).sort();
    if (!opts.force && doc.lastPending && pending.join() === doc.lastPending.join()) return;
    const attempt = Math.max(opts.attempt ?? 0, doc.lastAttempt ?? 1);
    const entry = app.outbox.entry('privacy.erasure.participant-replied', {
      subject: doc.subjectId,
      correlationId: requestId,
      payload: {
        requestId, subjectId: doc.subjectId, participant: 'data-sharing', attempt, status: 'completed',
        counts: doc.counts, kept: doc.kept as never, pendingRecipients: pending,
      },
    });
    const updated = await app.outbox.update(erasures, { _id: requestId, rev: doc.rev }, { $set: { lastPending: pending, lastAttempt: attempt }, $inc: { rev: 1, replies: 1 } }, [entry]);
    if (updated) return;
  }
  throw new Error(`could not record the reply for erasure ${requestId} (kept changing)`);
}

/**
 * Handles one delivery of an erasure request; idempotent (a redelivery replies the same counts). An
 * account erasure first marks the subject erased, so nothing more is recorded about them (policy 4.1,
 * 4.2; PIPL art. 47), then plans and applies.
 */
export async function handleErasureRequested(app: FastifyInstance, event: EventEnvelope<'privacy.erasure.requested'>, lookups: ErasureLookups): Promise<void> {
  const p = event.payload;
  if (p.participants && !p.participants.includes('data-sharing')) return;
  // The mark first, then the read (policy 4.2): a share or any other record written about the subject
  // from now on is taken back by its writer, and one written before is found by the plan below
  // (plugins/erased-subjects.ts). Marked on every delivery: idempotent, and a restore re-applied
  // (`restoreId`) may have brought back a database without the mark.
  if ((p.scope as ErasureScope).kind === 'account') await app.erasedSubjects.mark(p.subjectId, p.requestId);
  const { erasures } = app.models;
  let doc: ErasureDoc | null = await erasures.findById(p.requestId).lean<ErasureDoc>();
  if (!doc) {
    const { plan, kept, counts, recipients } = await makePlan(lookups, p);
    // Nothing held for this subject (most subjects): record the answer and reply in one write.
    if (Object.values(plan).every((list) => (list as unknown[]).length === 0)) {
      const entry = app.outbox.entry('privacy.erasure.participant-replied', {
        subject: p.subjectId, correlationId: p.requestId,
        payload: { requestId: p.requestId, subjectId: p.subjectId, participant: 'data-sharing', attempt: p.attempt, status: 'completed', counts, kept: [], pendingRecipients: [] },
      });
      try {
        await app.outbox.insert(erasures, {
          _id: p.requestId, subjectId: p.subjectId, scope: p.scope, ground: p.ground, status: 'applied', plan: plan as unknown as Record<string, unknown>,
          counts, kept, recipients, lastAttempt: p.attempt, lastPending: [], replies: 1, rev: 1, createdAt: new Date(), appliedAt: new Date(),
        }, [entry]);
        return;
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
      }
    }
    try {
      doc = (await erasures.create({
        _id: p.requestId, subjectId: p.subjectId, scope: p.scope, ground: p.ground, status: 'planned', plan: plan as unknown as Record<string, unknown>,
        counts, kept, recipients, lastAttempt: p.attempt, lastPending: null, replies: 0, rev: 0, createdAt: new Date(),
      })).toObject();
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
      doc = await erasures.findById(p.requestId).lean<ErasureDoc>(); // a concurrent delivery planned it first
      if (!doc) throw new Error(`erasure ${p.requestId} vanished`, { cause: err });
    }
  }
  if (doc.status === 'planned') await applyPlan(app, doc);
  await replyToSaga(app, p.requestId, { attempt: p.attempt, force: true });
}
