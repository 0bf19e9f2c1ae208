import type { DataCategory, EventEnvelope } from '@pipp/contracts';
import { leavingHeld } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import type { Model } from 'mongoose';
import { IDENTITY_CATEGORIES, retentionCutoff } from '../domain/erasure.js';

type Counts = { erased: number; anonymized: number; kept: number };

/**
 * Retention sweep participant (policy 5.1, 5.2, 4.2.5): applies each rule (category, periodDays,
 * action) to what identity holds, in batches of `batchSize`, replying `in-progress` after each batch and
 * `completed` at the end (through the outbox of the sweep's record). Time-based categories:
 * `device-info` (devices by last use, sign-in records by time), `activity-log` (by time), `session`
 * (ended sessions by last use), `identity-verification` (sent messages and codes). Account data
 * (phone, profile, credentials, contact channels) lives as long as the account and is erased through
 * erasure requests. What legal holds cover stays (policy 4.1): those the request names and those
 * identity was told of (legalHoldsPlugin). A sweep already completed is answered again with the same
 * counts.
 */
export async function handleSweep(app: FastifyInstance, event: EventEnvelope<'privacy.retention.sweep-requested'>): Promise<void> {
  const p = event.payload;
  const m = app.models;
  const asOf = new Date(p.asOf);
  const reply = (status: 'in-progress' | 'completed', counts: Counts, batches: number) => app.outbox.entry('privacy.retention.sweep-replied', {
    correlationId: event.correlationId,
    payload: { sweepId: p.sweepId, participant: 'identity', status, counts, batches },
  });
  const done = await m.sweeps.findById(p.sweepId).lean();
  if (done?.status === 'completed') {
    await app.outbox.update(m.sweeps, { _id: p.sweepId }, { $set: { at: new Date() } }, [reply('completed', done.counts, done.batches)]);
    return;
  }
  // The periods identity shows and dates records by follow the retention service's (its DPO edits them).
  await app.retentionPeriods.apply(p);
  await m.sweeps.updateOne({ _id: p.sweepId }, { $setOnInsert: { status: 'in-progress', counts: { erased: 0, anonymized: 0, kept: 0 }, batches: 0, at: new Date() } }, { upsert: true });
  const counts: Counts = { erased: 0, anonymized: 0, kept: 0 };
  let batches = 0;

  /** Deletes (or anonymizes) matching documents batch by batch; returns how many. */
  async function apply(model: Model<any>, filter: Record<string, unknown>, action: 'erase' | 'anonymize', anonymize?: Record<string, unknown>) { // eslint-disable-line @typescript-eslint/no-explicit-any
    for (;;) {
      const ids = (await model.find(filter, { _id: 1 }).limit(p.batchSize).lean()).map((d: { _id: unknown }) => d._id);
      if (!ids.length) return;
      if (action === 'anonymize' && anonymize) {
        const res = await model.updateMany({ _id: { $in: ids } }, anonymize);
        counts.anonymized += res.modifiedCount;
      } else {
        const res = await model.deleteMany({ _id: { $in: ids } });
        counts.erased += res.deletedCount;
      }
      batches += 1;
      await app.outbox.update(m.sweeps, { _id: p.sweepId }, { $set: { counts, batches, at: new Date() } }, [reply('in-progress', counts, batches)]);
      if (ids.length < p.batchSize) return;
    }
  }

  // What legal holds cover stays (policy 4.1). Codes and sent messages (identity-verification) are
  // keyed by number, not subject, and live minutes to days: a hold does not reach them.
  const heldSubjects = await app.legalHolds.heldSubjects(p.heldSubjects);
  const held = (filter: Record<string, unknown>, category: DataCategory) => leavingHeld(filter, heldSubjects, category);
  for (const rule of p.rules) {
    if (!(IDENTITY_CATEGORIES as readonly string[]).includes(rule.category)) continue;
    const cutoff = retentionCutoff(asOf, rule.periodDays);
    switch (rule.category) {
      case 'device-info':
        await apply(m.devices, held({ lastSeenAt: { $lt: cutoff } }, rule.category), 'erase');
        // Anonymized sign-in records keep only time, outcome and score (security statistics).
        await apply(m.signIns, held({ at: { $lt: cutoff }, subjectId: { $ne: 'anonymous' } }, rule.category), rule.action, { $set: { subjectId: 'anonymous' }, $unset: { deviceId: '', ipPrefix: '' } });
        break;
      case 'activity-log':
        await apply(m.activity, held({ at: { $lt: cutoff }, subjectId: { $ne: 'anonymous' } }, rule.category), rule.action, { $set: { subjectId: 'anonymous' }, $unset: { query: '', target: '' } });
        break;
      case 'session':
        await apply(m.sessions, held({ lastUsedAt: { $lt: cutoff }, active: false }, rule.category), 'erase');
        await apply(m.sessions, held({ expiresAt: { $lt: asOf } }, rule.category), 'erase');
        break;
      case 'identity-verification':
        await apply(m.smsSink, { at: { $lt: cutoff } }, 'erase');
        await apply(m.otpCodes, { sentAt: { $lt: cutoff } }, 'erase');
        break;
      default:
        break;
    }
  }
  await app.outbox.update(m.sweeps, { _id: p.sweepId }, { $set: { status: 'completed', counts, batches, at: new Date() } }, [reply('completed', counts, batches)]);
}
