import type { ErasureParticipant, EventPayload } from '@pipp/contracts';
import { isTransient, outboxPlugin, type EventHandler } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import { Schema, type Model } from 'mongoose';
import type { Counts, KeptItem } from '../domain/saga.js';

/**
 * The erasure participant's side of the saga, for any service built with the kit (retention uses it
 * for its own part; the test fixtures' participant processes too). It could move to the kit as is.
 *
 * On `privacy.erasure.requested` (policy 4.1, 4.2, 5.1, 2.4.2(5)): ignore it when `participants` is
 * set and does not name this service; otherwise run the service's `erase` (which must be idempotent:
 * erasing what is already gone changes nothing) and reply through the outbox, with the reply stored
 * per request in the same write. Idempotent: once completed, a redelivery (higher `attempt`) is
 * answered with the same result and nothing is erased again; a failed effect is answered `failed`
 * with its reason (the orchestrator retries), an infrastructure outage is retried by the consumer.
 */
export interface ErasureEffect {
  counts: Counts;
  kept: KeptItem[];
}

export type ErasureRequested = EventPayload<'privacy.erasure.requested'>;

export interface ErasureReplyRecord {
  _id: string;
  subjectId: string;
  state: 'completed' | 'failed';
  counts: Counts;
  kept: KeptItem[];
  error?: string;
  lastAttempt: number;
  at: Date;
}

/** The schema of the per-request reply records (with an outbox), collection `erasure_replies`. */
export function erasureReplySchema(): Schema {
  return new Schema({
    _id: String, subjectId: { type: String, required: true }, state: { type: String, required: true }, counts: { type: Schema.Types.Mixed, required: true },
    kept: { type: [Schema.Types.Mixed], default: [] }, error: String, lastAttempt: { type: Number, required: true }, at: { type: Date, required: true },
  }, { versionKey: false, minimize: false, collection: 'erasure_replies' }).plugin(outboxPlugin);
}

/** Error text safe to send: first line, bounded, no stack. */
function reason(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 500) || 'failed';
}

export function erasureParticipantHandler(app: FastifyInstance, opts: {
  name: ErasureParticipant;
  replies: Model<ErasureReplyRecord>;
  erase: (request: ErasureRequested) => Promise<ErasureEffect>;
}): EventHandler<'privacy.erasure.requested'> {
  const reply = (p: ErasureRequested, status: 'completed' | 'failed', effect: ErasureEffect, error?: string) => app.outbox.entry('privacy.erasure.participant-replied', {
    subject: p.subjectId,
    correlationId: p.requestId,
    payload: {
      requestId: p.requestId, subjectId: p.subjectId, participant: opts.name, attempt: p.attempt, status,
      counts: effect.counts, kept: effect.kept, ...(error ? { error } : {}),
    },
  });
  return async (event, ctx) => {
    const p = event.payload;
    if (p.participants && !p.participants.includes(opts.name)) return;
    const prev = await opts.replies.findById(p.requestId).lean();
    if (prev?.state === 'completed') {
      if (prev.lastAttempt >= p.attempt) return;
      await app.outbox.update(opts.replies, { _id: p.requestId }, { $set: { lastAttempt: p.attempt, at: new Date() } }, [reply(p, 'completed', prev)]);
      ctx.log.info({ requestId: p.requestId, attempt: p.attempt }, 'erasure already done here; same reply sent again');
      return;
    }
    let effect: ErasureEffect;
    try {
      effect = await opts.erase(p);
    } catch (err) {
      if (isTransient(err)) throw err;
      const why = reason(err);
      const none = { counts: { erased: 0, anonymized: 0, kept: 0 }, kept: [] };
      await app.outbox.update(opts.replies, { _id: p.requestId }, {
        $set: { subjectId: p.subjectId, state: 'failed', counts: none.counts, kept: [], error: why, lastAttempt: p.attempt, at: new Date() },
      }, [reply(p, 'failed', none, why)], { upsert: true });
      ctx.log.warn({ requestId: p.requestId, attempt: p.attempt, err }, 'erasure failed here; replied failed');
      return;
    }
    await app.outbox.update(opts.replies, { _id: p.requestId }, {
      $set: { subjectId: p.subjectId, state: 'completed', counts: effect.counts, kept: effect.kept, lastAttempt: p.attempt, at: new Date() },
      $unset: { error: 1 },
    }, [reply(p, 'completed', effect)], { upsert: true });
    ctx.log.info({ requestId: p.requestId, attempt: p.attempt, counts: effect.counts }, 'erasure done here');
  };
}

export type SweepRequested = EventPayload<'privacy.retention.sweep-requested'>;

export interface SweepReplyRecord {
  _id: string;
  state: 'in-progress' | 'completed' | 'failed';
  counts: Counts;
  batches: number;
  expiredSubjects?: string[];
  lastAttempt: number;
  at: Date;
}

/** The schema of per-sweep progress records (with an outbox), collection `sweep_replies`. */
export function sweepReplySchema(): Schema {
  return new Schema({
    _id: String, state: { type: String, required: true }, counts: { type: Schema.Types.Mixed, required: true }, batches: { type: Number, default: 0 },
    expiredSubjects: { type: [String], default: undefined }, lastAttempt: { type: Number, required: true }, at: { type: Date, required: true },
  }, { versionKey: false, minimize: false, collection: 'sweep_replies' }).plugin(outboxPlugin);
}

/** Progress callback of a sweep: the running totals after each batch (policy 5.1 "in batches"). */
export type SweepProgressFn = (totals: { counts: Counts; batches: number }) => Promise<void>;

/**
 * A participant's side of an expiry sweep (policy 5.1, 5.2, 4.2.5): run `sweep` (batches of
 * `batchSize`, reporting each batch as `in-progress`), then reply `completed` with the totals and the
 * subjects whose whole account expired here (retention erases those everywhere through the saga).
 * A redelivery of a finished sweep is answered with the same result.
 */
export function sweepParticipantHandler(app: FastifyInstance, opts: {
  name: ErasureParticipant;
  replies: Model<SweepReplyRecord>;
  sweep: (request: SweepRequested, progress: SweepProgressFn) => Promise<{ counts: Counts; batches: number; expiredSubjects?: string[] }>;
}): EventHandler<'privacy.retention.sweep-requested'> {
  const reply = (p: SweepRequested, status: 'in-progress' | 'completed' | 'failed', r: { counts: Counts; batches: number; expiredSubjects?: string[] | undefined }, error?: string) => app.outbox.entry('privacy.retention.sweep-replied', {
    correlationId: p.sweepId,
    key: p.sweepId,
    payload: {
      sweepId: p.sweepId, participant: opts.name, status, counts: r.counts, batches: r.batches, attempt: p.attempt ?? 1,
      ...(r.expiredSubjects?.length ? { expiredSubjects: r.expiredSubjects.slice(0, 1000) } : {}), ...(error ? { error } : {}),
    },
  });
  return async (event, ctx) => {
    const p = event.payload;
    const attempt = p.attempt ?? 1;
    if (p.participants && !p.participants.includes(opts.name)) return;
    const prev = await opts.replies.findById(p.sweepId).lean();
    if (prev?.state === 'completed') {
      if (prev.lastAttempt >= attempt) return;
      await app.outbox.update(opts.replies, { _id: p.sweepId }, { $set: { lastAttempt: attempt, at: new Date() } }, [reply(p, 'completed', prev)]);
      return;
    }
    const progress: SweepProgressFn = async (totals) => {
      await app.outbox.update(opts.replies, { _id: p.sweepId }, { $set: { state: 'in-progress', counts: totals.counts, batches: totals.batches, lastAttempt: attempt, at: new Date() } }, [reply(p, 'in-progress', totals)], { upsert: true });
      ctx.log.info({ sweepId: p.sweepId, batches: totals.batches, counts: totals.counts }, 'sweep batch done');
    };
    try {
      const result = await opts.sweep(p, progress);
      await app.outbox.update(opts.replies, { _id: p.sweepId }, {
        $set: { state: 'completed', counts: result.counts, batches: result.batches, lastAttempt: attempt, at: new Date(), ...(result.expiredSubjects ? { expiredSubjects: result.expiredSubjects } : {}) },
      }, [reply(p, 'completed', result)], { upsert: true });
      ctx.log.info({ sweepId: p.sweepId, counts: result.counts, batches: result.batches }, 'sweep done here');
    } catch (err) {
      if (isTransient(err)) throw err;
      const why = reason(err);
      const zero = { counts: { erased: 0, anonymized: 0, kept: 0 }, batches: 0 };
      await app.outbox.update(opts.replies, { _id: p.sweepId }, { $set: { state: 'failed', lastAttempt: attempt, at: new Date() }, $setOnInsert: zero }, [reply(p, 'failed', zero, why)], { upsert: true });
      ctx.log.warn({ sweepId: p.sweepId, err }, 'sweep failed here; replied failed');
    }
  };
}
