import type { DataCategory, EventEnvelope } from '@pipp/contracts';
import { leavingHeld } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import type { Model } from 'mongoose';

/**
 * Retention sweeps (policy 5.1, 5.2, 4.2.5): applies each rule `{category, periodDays, action}` to what
 * this service holds, in batches of `batchSize`, replying `in-progress` after each batch and
 * `completed` at the end (`privacy.retention.sweep-replied`). What it holds per category:
 * - `sharing-record`: sharing records (by `sharedAt`) and public-disclosure records (`disclosedAt`);
 *   `erase` deletes them, `anonymize` cuts the link to the subject (subject id, evidence and free text);
 * - `indirect-collection`: PI received from third parties (by `receivedAt`), deleted either way;
 * - any category carried by an indirect collection (e.g. `health`): those items are removed.
 * - any category of data supplied about other people (2.4.2(1)): those records are deleted.
 * Records kept by law (`held`) are skipped. A sweep id already completed replies the same again; a
 * redelivery naming other `participants` is ignored; a `shutdown` sweep (2.4.2(5)) takes every record
 * collected for that function, whatever its age.
 */
type SweepPayload = EventEnvelope<'privacy.retention.sweep-requested'>['payload'];

export async function handleSweep(app: FastifyInstance, event: EventEnvelope<'privacy.retention.sweep-requested'>): Promise<void> {
  const p: SweepPayload = event.payload;
  if (p.participants && !p.participants.includes('data-sharing')) return;
  const { sweeps, shares, disclosures, indirect, otherPeople } = app.models;
  const done = await sweeps.findById(p.sweepId).lean();
  const reply = (status: 'in-progress' | 'completed', counts: { erased: number; anonymized: number; kept: number }, batches: number) => app.outbox.entry('privacy.retention.sweep-replied', {
    correlationId: p.sweepId,
    key: p.sweepId, // one sweep's progress reports stay on one partition, in order
    payload: { sweepId: p.sweepId, participant: 'data-sharing', status, counts, batches, ...(p.attempt ? { attempt: p.attempt } : {}) },
  });
  if (done?.status === 'completed') {
    await app.outbox.update(sweeps, { _id: p.sweepId }, { $set: { at: new Date() } }, [reply('completed', done.counts, done.batches)]);
    return;
  }
  await sweeps.updateOne({ _id: p.sweepId }, { $setOnInsert: { _id: p.sweepId, status: 'running', counts: { erased: 0, anonymized: 0, kept: 0 }, batches: 0, at: new Date() } }, { upsert: true });
  const asOf = Date.parse(p.asOf);
  const counts = { erased: 0, anonymized: 0, kept: 0 };
  let batches = 0;
  const progress = async () => {
    batches += 1;
    await app.outbox.update(sweeps, { _id: p.sweepId }, { $set: { counts: { ...counts }, batches } }, [reply('in-progress', { ...counts }, batches)]);
  };
  // What legal holds cover stays (policy 4.1): those the request names and those data-sharing was told of.
  const heldSubjects = await app.legalHolds.heldSubjects(p.heldSubjects);
  /** Deletes or transforms the matching documents, batch by batch; what a legal hold covers stays (policy 4.1). */
  const inBatches = async (model: Model<never>, category: DataCategory, match: Record<string, unknown>, act: (ids: string[]) => Promise<void>) => {
    const filter = leavingHeld(match, heldSubjects, category);
    for (;;) {
      const ids = (await model.find(filter as never, { _id: 1 }).limit(p.batchSize).lean() as { _id: string }[]).map((d) => d._id);
      if (!ids.length) return;
      await act(ids);
      await progress();
      if (ids.length < p.batchSize) return;
    }
  };
  // A business shutdown (2.4.2(5)) covers what was collected for that function, whatever its age.
  const fn = p.shutdown ? { functionId: p.shutdown.functionId } : {};
  for (const rule of applicableRules(p.rules)) {
    const cutoff = p.shutdown ? new Date(asOf + 1) : new Date(asOf - rule.periodDays * 86_400_000);
    const category = rule.category as DataCategory;
    if (category === 'sharing-record') {
      const anonymize = rule.action === 'anonymize';
      await inBatches(shares as unknown as Model<never>, category, { sharedAt: { $lt: cutoff }, held: null, ...fn, ...(anonymize ? { subjectId: { $ne: '-' } } : {}) }, async (ids) => {
        if (anonymize) {
          const r = await shares.updateMany({ _id: { $in: ids } }, { $set: { subjectId: '-', basis: null }, $unset: { transfer: 1, requestedBy: 1, functionId: 1 } });
          counts.anonymized += r.modifiedCount;
        } else counts.erased += (await shares.deleteMany({ _id: { $in: ids } })).deletedCount;
      });
      await inBatches(disclosures as unknown as Model<never>, category, { disclosedAt: { $lt: cutoff }, held: null, ...fn, ...(anonymize ? { subjectId: { $ne: '-' } } : {}) }, async (ids) => {
        if (anonymize) {
          const r = await disclosures.updateMany({ _id: { $in: ids } }, { $set: { subjectId: '-', basis: null, channel: '-' }, $unset: { violationRef: 1, violation: 1, measuresTaken: 1, decidedBy: 1 } });
          counts.anonymized += r.modifiedCount;
        } else counts.erased += (await disclosures.deleteMany({ _id: { $in: ids } })).deletedCount;
      });
    } else if (category === 'indirect-collection') {
      await inBatches(indirect as unknown as Model<never>, category, { receivedAt: { $lt: cutoff }, held: null, ...fn }, async (ids) => {
        counts.erased += (await indirect.deleteMany({ _id: { $in: ids } })).deletedCount;
      });
    } else {
      await inBatches(indirect as unknown as Model<never>, category, { receivedAt: { $lt: cutoff }, held: null, ...fn, 'items.category': category }, async (ids) => {
        for (const id of ids) {
          const r = await indirect.findById(id).lean();
          if (!r) continue;
          const items = r.items.filter((i) => i.category !== category);
          if (items.length) await indirect.updateOne({ _id: id }, { $set: { items }, $inc: { rev: 1 } });
          else await indirect.deleteOne({ _id: id });
          counts.erased += 1;
        }
      });
      // Data supplied about other people, in this category (2.4.2(1)).
      await inBatches(otherPeople as unknown as Model<never>, category, { createdAt: { $lt: cutoff }, categories: category, ...fn }, async (ids) => {
        counts.erased += (await otherPeople.deleteMany({ _id: { $in: ids } })).deletedCount;
      });
    }
  }
  await app.outbox.update(sweeps, { _id: p.sweepId }, { $set: { status: 'completed', counts, batches, at: new Date() } }, [reply('completed', counts, batches)]);
}

/**
 * The rules for this service: those naming no service or this one (a service-specific rule overrides the
 * general rule for its category), counted from collection; clocks this service does not keep
 * (last activity, account closure, purpose fulfilled) are left to the services that keep them.
 */
export function applicableRules(rules: SweepPayload['rules']): SweepPayload['rules'] {
  const mine = rules.filter((r) => (!r.service || r.service === 'data-sharing') && (!r.startsFrom || r.startsFrom === 'collection'));
  const specific = new Set(mine.filter((r) => r.service === 'data-sharing').map((r) => r.category));
  return mine.filter((r) => r.service === 'data-sharing' || !specific.has(r.category));
}

/**
 * Purges records kept by law once their purge date has passed (policy 5.1, 4.2): they were isolated
 * from processing since the erasure; now they go. Returns how many were deleted.
 */
export async function purgeExpiredHolds(app: FastifyInstance, now = new Date()): Promise<number> {
  const { shares, disclosures, indirect } = app.models;
  const filter = { 'held.purgeAt': { $lte: now } };
  const results = await Promise.all([shares.deleteMany(filter), disclosures.deleteMany(filter), indirect.deleteMany(filter)]);
  return results.reduce((n, r) => n + r.deletedCount, 0);
}
