import type { EventEnvelope } from '@pipp/contracts';
import type { FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import { planErasure, type ErasurePlan } from '../domain/erasure.js';
import { pseudonymFor, sha256 } from '../domain/receipt.js';
import type { AuditDoc, ConsentRecordDoc, ErasureDoc, LegalBasisUseDoc, SweepDoc } from '../plugins/models.js';
import { heldSubjectIds, leavingHeld, subjectDeletion, subjectDocuments, upsertRaced } from '@pipp/service-kit';

/**
 * What an erasure looks up by subject (`_id`s only), shared with the other erasures in hand (the kit's
 * `subjectDocuments` and `subjectDeletion`: one `$in` query per collection for all of them, since on
 * FerretDB 1.24 a filter other than `{ _id }` reads the whole collection): the subject's ledger
 * records, records of processing without consent (`legalBasisUses`, counted then deleted) and staff
 * audit records (`audit`, then pseudonymized by `_id`).
 */
export function erasureLookups(app: FastifyInstance) {
  const m = app.models;
  return {
    records: subjectDocuments<ConsentRecordDoc>(m.records, ['_id']),
    legalBasisUses: subjectDocuments<LegalBasisUseDoc>(m.legalBasisUses, ['_id']),
    legalBasisUseDeletion: subjectDeletion(m.legalBasisUses),
    audit: subjectDocuments<AuditDoc>(m.audit, ['_id']),
  };
}
export type ErasureLookups = ReturnType<typeof erasureLookups>;

/**
 * This service's part of the erasure saga (policy 4.1, 4.2; DESIGN.md): the subject's ledger is
 * pseudonymized — the subject id replaced by a keyed pseudonym, kept isolated from every decision,
 * export and view as proof that consent existed, with its legal basis and purge date — and the
 * records of processing without consent are erased. The reply says what was kept and why.
 * Idempotent: the plan (counts, what is kept) is stored first, keyed by the request id, and every
 * delivery of the same request replies with it.
 */
export async function handleErasure(app: FastifyInstance, config: Config, event: EventEnvelope<'privacy.erasure.requested'>, lookups: ErasureLookups): Promise<void> {
  const p = event.payload;
  if (p.participants && !p.participants.includes('consent')) return;
  const { models, outbox } = app;
  const inScope = p.scope.kind === 'account' || p.scope.categories.includes('consent-record');
  const pseudonym = pseudonymFor(p.subjectId, config.CONSENT_PSEUDONYM_KEY);

  let doc = await models.erasures.findById(p.requestId).lean<ErasureDoc>();
  // The subject's records, found with those of the other erasures in hand (one query for all) and then
  // changed by `_id`: on FerretDB 1.24 a filter other than `{ _id }` reads the whole collection, once per
  // query (docs/infrastructure.md).
  const recordIdsOf = async () => (await lookups.records.load(p.subjectId)).map((r) => r._id);
  let recordIds: string[] | undefined;
  if (!doc) {
    const [ids, uses] = inScope ? await Promise.all([recordIdsOf(), lookups.legalBasisUses.load(p.subjectId)]) : [[], []];
    recordIds = ids;
    const plan: ErasurePlan = planErasure({
      records: recordIds.length, legalBasisUses: uses.length, legalHolds: p.legalHolds, now: new Date(), proofRetentionDays: config.CONSENT_PROOF_RETENTION_DAYS,
    });
    try {
      doc = (await models.erasures.create({ _id: p.requestId, pseudonym, status: 'in-progress', counts: plan.counts, kept: plan.kept, startedAt: new Date(), replies: 0 })).toObject() as ErasureDoc;
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
      doc = (await models.erasures.findById(p.requestId).lean<ErasureDoc>())!; // a concurrent delivery planned it first
    }
  }

  if (doc.status === 'in-progress' && inScope) {
    // An account erasure: nothing more is recorded about the subject, from before the first look.
    if (p.scope.kind === 'account') await app.ledger.markErased(p.subjectId, p.requestId);
    else app.projection.drop(p.subjectId);
    const kept = doc.kept[0];
    if (kept) {
      const pseudonymized = { at: new Date(), requestId: p.requestId, pseudonym, purgeAt: new Date(kept.purgeAt), legalBasis: kept.legalBasis, reason: kept.reason };
      // A subject id of its own per record and request: a record appended meanwhile, numbered again from
      // 1 once the projection forgot the subject, cannot collide on (subjectId, seq) with those done before.
      const set = (id: string) => ({ subjectId: `${pseudonym}.${sha256(`${p.requestId}\u0000${id}`).slice(0, 12)}`, pseudonymized });
      // Repeated until no record names the subject (one appended meanwhile is found by the next look).
      // Each write holds the record's lock: FerretDB 1.24 loses an update that races with the outbox
      // relay removing published entries from the same document.
      recordIds ??= await recordIdsOf();
      for (let pass = 0; pass < 10 && recordIds.length; pass += 1) {
        for (const id of recordIds) await outbox.withDocument(models.records, id, () => models.records.updateOne({ _id: id }, { $set: set(id) }));
        recordIds = await recordIdsOf();
      }
      if (recordIds.length) throw new Error('records of the subject are still not pseudonymized; retrying');
    }
    await app.legalBasisLog.forget(p.subjectId);
    await lookups.legalBasisUseDeletion.erase(p.subjectId);
    // Staff-access audit records stay (accountability) but name the subject by pseudonym only.
    for (const a of await lookups.audit.load(p.subjectId)) await models.audit.updateOne({ _id: a._id }, { $set: { subjectId: pseudonym } });
  }

  const reply = outbox.entry('privacy.erasure.participant-replied', {
    subject: p.subjectId,
    correlationId: event.correlationId,
    payload: {
      requestId: p.requestId, subjectId: p.subjectId, participant: 'consent', attempt: p.attempt, status: 'completed',
      counts: doc.counts, kept: doc.kept as never,
    },
  });
  await outbox.update(models.erasures, { _id: p.requestId }, {
    $set: { status: 'completed', completedAt: doc.completedAt ?? new Date() }, $inc: { replies: 1 },
  }, [reply]);
}

/**
 * Applies a retention sweep to what this service holds (policy 5.1, 5.2, 4.2.5), in batches of
 * `batchSize`, replying with progress after each batch:
 * - pseudonymized proofs of consent whose purge date has come are deleted (always);
 * - with a rule for `consent-record`: the history of a consent withdrawn more than `periodDays` ago is
 *   erased or anonymized, and records of processing without consent last used before then are erased.
 * A consent in force is never swept: it is the basis of ongoing processing. Idempotent per sweep id.
 */
export async function handleSweep(app: FastifyInstance, event: EventEnvelope<'privacy.retention.sweep-requested'>): Promise<void> {
  const { sweepId, rules, asOf, batchSize } = event.payload;
  const { models, outbox, projection } = app;
  const asOfDate = new Date(asOf);
  const existing = await models.sweeps.findById(sweepId).lean<SweepDoc>();
  if (existing?.status === 'completed') {
    await outbox.update(models.sweeps, { _id: sweepId }, { $set: { status: 'completed' } }, [replyOf(app, sweepId, existing, 'completed', event.correlationId)]);
    return;
  }
  if (!existing) {
    await upsertRaced(() => models.sweeps.updateOne({ _id: sweepId }, { $setOnInsert: { status: 'in-progress', counts: { erased: 0, anonymized: 0, kept: 0 }, batches: 0, startedAt: new Date() } }, { upsert: true }));
  }
  const progress = async (erased: number, anonymized: number) => {
    const doc = await outbox.update(models.sweeps, { _id: sweepId }, { $inc: { 'counts.erased': erased, 'counts.anonymized': anonymized, batches: 1 } }, []);
    const current = doc!.toObject() as SweepDoc;
    await outbox.update(models.sweeps, { _id: sweepId }, { $set: { status: 'in-progress' } }, [replyOf(app, sweepId, current, 'in-progress', event.correlationId)]);
  };

  // Kept proofs past their purge date (5.1).
  for (;;) {
    const batch = await models.records.find({ 'pseudonymized.purgeAt': { $lte: asOfDate } }, { _id: 1 }).limit(batchSize).lean<{ _id: string }[]>();
    if (!batch.length) break;
    const r = await models.records.deleteMany({ _id: { $in: batch.map((d) => d._id) } });
    await progress(r.deletedCount, 0);
    if (batch.length < batchSize) break;
  }

  const rule = rules.find((r) => r.category === 'consent-record');
  if (rule) {
    const cutoff = asOfDate.getTime() - rule.periodDays * 24 * 3600 * 1000;
    const expired: [string, string][] = [];
    // What a legal hold covers stays (policy 4.1): the consent records of held subjects.
    const heldSubjects = await app.legalHolds.heldSubjects(event.payload.heldSubjects);
    const held = new Set(heldSubjectIds(heldSubjects, 'consent-record'));
    for (const [subjectId, s] of projection.entries()) {
      if (held.has(subjectId)) continue;
      for (const [key, entry] of s.consents) if (entry.state === 'withdrawn' && entry.at < cutoff) expired.push([subjectId, key]);
    }
    for (let i = 0; i < expired.length; i += batchSize) {
      let erased = 0;
      let anonymized = 0;
      for (const [subjectId, key] of expired.slice(i, i + batchSize)) {
        if (rule.action === 'erase') {
          erased += (await models.records.deleteMany({ subjectId, scopeKey: key })).deletedCount;
        } else {
          const anon = `anon_${randomUUID()}`;
          const found = await models.records.find({ subjectId, scopeKey: key }, { _id: 1 }).lean<Pick<ConsentRecordDoc, '_id'>[]>();
          for (const [n, d] of found.entries()) {
            await models.records.updateOne({ _id: d._id }, {
              $set: {
                subjectId: `${anon}.${n}`,
                pseudonymized: { at: new Date(), requestId: sweepId, pseudonym: anon, purgeAt: new Date('9999-12-31T00:00:00Z'), legalBasis: 'anonymized', reason: 'anonymized by a retention sweep (5.1): no longer linked to any subject' },
              },
            });
          }
          anonymized += found.length;
        }
        projection.forget(subjectId, key);
      }
      await progress(erased, anonymized);
    }
    const uses = await models.legalBasisUses.deleteMany(leavingHeld({ lastAt: { $lt: new Date(cutoff) } }, heldSubjects, 'consent-record'));
    if (uses.deletedCount) await progress(uses.deletedCount, 0);
  }

  const final = await outbox.update(models.sweeps, { _id: sweepId }, { $set: { status: 'completed', completedAt: new Date() } }, []);
  const done = final!.toObject() as SweepDoc;
  await outbox.update(models.sweeps, { _id: sweepId }, { $set: { status: 'completed' } }, [replyOf(app, sweepId, done, 'completed', event.correlationId)]);
}

function replyOf(app: FastifyInstance, sweepId: string, doc: SweepDoc, status: 'in-progress' | 'completed', correlationId: string) {
  return app.outbox.entry('privacy.retention.sweep-replied', {
    correlationId,
    key: sweepId, // one sweep's progress replies stay in order (one partition)
    payload: { sweepId, participant: 'consent', status, counts: doc.counts, batches: doc.batches },
  });
}
