import type { FastifyInstance } from 'fastify';
import { effectiveRule } from '../domain/policies.js';
import { scopeCategories } from '../domain/scope.js';
import { KEY_CONCURRENCY } from './orchestrator.js';
import { erasureParticipantHandler, sweepParticipantHandler, type ErasureEffect, type ErasureRequested, type SweepRequested, type SweepProgressFn } from './participant-protocol.js';

const DAY_MS = 86_400_000;

/**
 * Retention as an erasure participant (policy 4.1, 4.2-backups): it holds no PI in clear, only ids.
 * Its part of every erasure is to put the subject on the backup suppression list; it keeps the
 * request ledger itself (category `erasure-request`) by its own retention policy, and says so.
 */
async function eraseHere(app: FastifyInstance, p: ErasureRequested): Promise<ErasureEffect> {
  await app.backups.suppress(p);
  if (!scopeCategories(p.scope).includes('erasure-request')) return { counts: { erased: 0, anonymized: 0, kept: 0 }, kept: [] };
  const policy = (await app.policies.current()).find((x) => x._id === 'erasure-request');
  const days = policy?.periodDays ?? 1095;
  return {
    counts: { erased: 0, anonymized: 0, kept: 1 },
    kept: [{
      category: 'erasure-request', legalBasis: 'legal-obligation', purgeAt: new Date(Date.now() + days * DAY_MS).toISOString(),
      reason: `The erasure request ledger (ids, grounds, counts; no PI in clear) is kept ${days} days as proof the request was honoured and to answer inquiries (policy 5.2.1)`,
    }],
  };
}

/**
 * Retention's part of an expiry sweep: the request ledger past its own retention period (policy
 * `erasure-request`) is erased (or anonymized: the subject id replaced) in batches, and the records of
 * what it kept are marked purged. A shutdown sweep finds nothing here (retention collects for no
 * function).
 */
async function sweepHere(app: FastifyInstance, p: SweepRequested, progress: SweepProgressFn) {
  const counts = { erased: 0, anonymized: 0, kept: 0 };
  let batches = 0;
  const rule = p.shutdown ? undefined : effectiveRule(p.rules, 'retention', 'erasure-request');
  if (rule) {
    const cutoff = new Date(Date.parse(p.asOf) - rule.periodDays * DAY_MS);
    const filter = { status: { $in: ['completed', 'refused'] }, updatedAt: { $lt: cutoff }, subjectId: { $ne: 'anonymized' } };
    for (;;) {
      const batch = (await app.store.requests.find(filter, { _id: 1 }).limit(p.batchSize).lean()).map((r) => r._id);
      if (!batch.length) break;
      if (rule.action === 'erase') {
        counts.erased += (await app.store.requests.deleteMany({ _id: { $in: batch } })).deletedCount;
        await app.store.replies.deleteMany({ _id: { $in: batch } });
      } else {
        counts.anonymized += (await app.store.requests.updateMany({ _id: { $in: batch } }, { $set: { subjectId: 'anonymized', 'requestedBy.actorId': 'anonymized', joins: [] } })).modifiedCount;
        await app.store.replies.updateMany({ _id: { $in: batch } }, { $set: { subjectId: 'anonymized' } });
      }
      await app.store.kept.updateMany({ requestId: { $in: batch }, participant: 'retention', state: { $ne: 'purged' } }, { $set: { state: 'purged', purgedAt: new Date() } });
      batches += 1;
      await progress({ counts: { ...counts }, batches });
      if (batch.length < p.batchSize) break;
    }
  }
  return { counts, batches };
}

/** Registers retention's participant consumer (erasure requests and sweeps addressed to it). */
export function registerParticipant(app: FastifyInstance, partitions: number) {
  app.kafka.consume({
    name: 'participant',
    // Idempotent by its reply records (a repeat is answered from them), so no processed-event record.
    dedupe: false,
    partitionsConsumedConcurrently: partitions,
    keyConcurrency: KEY_CONCURRENCY,
    handlers: {
      'privacy.erasure.requested': erasureParticipantHandler(app, { name: 'retention', replies: app.store.replies, erase: (p) => eraseHere(app, p) }),
      'privacy.retention.sweep-requested': sweepParticipantHandler(app, { name: 'retention', replies: app.store.sweepReplies, sweep: (p, progress) => sweepHere(app, p, progress) }),
    },
  });
}
