import { MAX_HELD_SUBJECTS, type ErasureParticipant, type EventPayload, type RetentionRule } from '@pipp/contracts';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { heldBySubject } from '@pipp/service-kit';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import {
  applySweepReply, planSweep, startSweep, sweepStatus, sweepTotals, type SweepReply,
} from '../domain/sweeps.js';
import { RetentionErrors } from '../errors.js';
import type { Actor, SweepDoc } from './models.js';

const SYSTEM: Actor = { role: 'service', actorId: 'retention' };
const SCHEDULE = 'expiry-sweep';

declare module 'fastify' {
  interface FastifyInstance {
    /** Expiry sweeps (see SweepService). */
    sweeps: SweepService;
  }
}

/**
 * Expiry sweeps (policy 5.1, 5.2, 4.2.5): a scheduled job (every SWEEP_INTERVAL_MS, claimed through
 * the `schedules` collection so that restarts and several instances neither skip nor double it)
 * publishes `privacy.retention.sweep-requested` with the current retention rules; every participant
 * erases or anonymizes what is past its period, in batches of SWEEP_BATCH_SIZE, and reports progress
 * (`sweep-replied`). Participants are tracked like in the erasure saga (silent ones are asked again
 * with backoff); subjects whose whole account expired somewhere are erased everywhere through the
 * saga (ground 4.2.5). Progress is logged and served by the sweeps status endpoint.
 */
export class SweepService {
  private readonly log: FastifyBaseLogger;

  constructor(private readonly app: FastifyInstance, private readonly config: Config) {
    this.log = app.log.child({ component: 'expiry-sweep' });
  }

  private get sweeps() {
    return this.app.store.sweeps;
  }

  /**
   * Starts a sweep now: scheduled, manual (an operator), or for a business shutdown (2.4.2(5): the
   * given rules with period 0 over the function's data). `id` makes a repeated start idempotent.
   */
  async start(input: { kind: SweepDoc['kind']; startedBy: Actor; rules?: RetentionRule[]; shutdown?: { shutdownId: string; functionId: string }; id?: string; participants?: ErasureParticipant[] }, now = new Date()): Promise<SweepDoc> {
    const id = input.id ?? `sw-${randomUUID()}`;
    const existing = await this.sweeps.findById(id).lean();
    if (existing) return existing;
    const rules = input.rules ?? await this.app.policies.rules();
    // Legal holds outlast retention periods (policy 4.1): what they cover is left by every participant.
    const heldSubjects = heldBySubject(await this.app.store.holds.find({ status: 'active', until: { $gt: now } }, { subjectId: 1, categories: 1 }).lean());
    // Named in the request when they fit (so a participant that has not yet seen a hold just placed
    // still leaves it); beyond that, each participant's own record of the holds (legalHoldsPlugin).
    const named = heldSubjects.length <= MAX_HELD_SUBJECTS;
    if (!named) this.log.warn({ heldSubjects: heldSubjects.length, max: MAX_HELD_SUBJECTS }, 'more held subjects than a sweep request can name: participants use the holds they were told of');
    const participants = input.participants ?? this.app.erasures.registered;
    const tracked = startSweep(participants, now, this.app.erasures.retry);
    const doc = {
      _id: id, kind: input.kind, ...(input.shutdown ? { shutdownId: input.shutdown.shutdownId, functionId: input.shutdown.functionId } : {}),
      asOf: now, rules, ...(named && heldSubjects.length ? { heldSubjects } : {}), batchSize: this.config.SWEEP_BATCH_SIZE, status: 'running' as const, participants: tracked, attempt: 1, expiredSubjects: 0,
      startedAt: now, startedBy: input.startedBy, nextActionAt: this.nextAction(tracked), rev: 0,
    };
    try {
      await this.app.outbox.insert(this.sweeps, doc, [this.requestedEvent(doc, 1, participants)]);
    } catch (err) {
      if ((err as { code?: number }).code === 11000) return (await this.sweeps.findById(id).lean())!;
      throw err;
    }
    this.log.info({ sweepId: id, kind: input.kind, rules: rules.length, participants, batchSize: doc.batchSize }, 'expiry sweep started');
    return (await this.sweeps.findById(id).lean())!;
  }

  private requestedEvent(doc: Pick<SweepDoc, '_id' | 'rules' | 'heldSubjects' | 'asOf' | 'batchSize' | 'shutdownId' | 'functionId'>, attempt: number, participants: ErasureParticipant[]) {
    const payload: EventPayload<'privacy.retention.sweep-requested'> = {
      sweepId: doc._id, rules: doc.rules as RetentionRule[], asOf: new Date(doc.asOf).toISOString(), batchSize: doc.batchSize, attempt, participants,
      ...(doc.heldSubjects?.length ? { heldSubjects: doc.heldSubjects } : {}),
      ...(doc.shutdownId && doc.functionId ? { shutdown: { shutdownId: doc.shutdownId, functionId: doc.functionId } } : {}),
    };
    return this.app.outbox.entry('privacy.retention.sweep-requested', { correlationId: doc._id, key: doc._id, payload });
  }

  private nextAction(participants: SweepDoc['participants']): Date | null {
    const times = Object.values(participants).map((p) => p!.nextRetryAt?.getTime()).filter((t): t is number => t !== undefined);
    return times.length ? new Date(Math.min(...times)) : null;
  }

  /**
   * Applies a participant's progress or result; its `expiredSubjects` get an account erasure through
   * the saga (origin expiry-sweep, ground 4.2.5; deterministic ids, so a repeat opens nothing new).
   */
  async applyReply(reply: SweepReply, now = new Date()): Promise<void> {
    for (const subjectId of reply.expiredSubjects ?? []) {
      const opened = await this.app.erasures.open({
        id: `ex-${reply.sweepId}-${subjectId}`.slice(0, 128), subjectId, scope: { kind: 'account' }, ground: '4.2.5', origin: 'expiry-sweep', requestedBy: SYSTEM, reference: reply.sweepId,
      }, now);
      if (opened.outcome === 'created') await this.sweeps.updateOne({ _id: reply.sweepId }, { $inc: { expiredSubjects: 1 } });
    }
    await this.app.outbox.withDocument(this.sweeps, reply.sweepId, () => this.applyLocked(reply, now));
  }

  private async applyLocked(reply: SweepReply, now: Date): Promise<void> {
    for (let round = 0; round < 20; round += 1) {
      const doc = await this.sweeps.findById(reply.sweepId).lean();
      if (!doc || doc.status === 'completed') return;
      const next = applySweepReply(doc.participants, reply, now, this.app.erasures.retry);
      if (!next) return;
      const status = sweepStatus(next);
      const set = { participants: next, status, nextActionAt: status === 'running' ? this.nextAction(next) : null, ...(status === 'completed' ? { completedAt: now } : {}) };
      const r = await this.sweeps.updateOne({ _id: doc._id, rev: doc.rev }, { $set: set, $inc: { rev: 1 } });
      if (!r.matchedCount) continue;
      const totals = sweepTotals(next);
      this.log.info({ sweepId: doc._id, participant: reply.participant, state: reply.status, counts: reply.counts, batches: reply.batches, totals }, 'expiry sweep progress');
      if (status !== 'running') this.log[status === 'completed' ? 'info' : 'warn']({ sweepId: doc._id, status, totals, ms: now.getTime() - doc.startedAt.getTime() }, `expiry sweep ${status}`);
      return;
    }
  }

  /**
   * The scheduler's pass: starts the scheduled sweep when due (claimed atomically), and asks silent
   * participants of running sweeps again.
   */
  async tick(now = new Date()): Promise<void> {
    if (this.config.SWEEP_INTERVAL_MS > 0) {
      await this.app.store.schedules.updateOne({ _id: SCHEDULE }, { $setOnInsert: { nextRunAt: new Date(now.getTime() + this.config.SWEEP_INTERVAL_MS) } }, { upsert: true });
      const claimed = await this.app.store.schedules.findOneAndUpdate(
        { _id: SCHEDULE, nextRunAt: { $lte: now } },
        { $set: { nextRunAt: new Date(now.getTime() + this.config.SWEEP_INTERVAL_MS), lastRunAt: now } },
        { new: true },
      ).lean();
      if (claimed) {
        const sweep = await this.start({ kind: 'scheduled', startedBy: SYSTEM, id: `sw-${now.toISOString().replace(/[^0-9]/g, '').slice(0, 14)}` }, now);
        await this.app.store.schedules.updateOne({ _id: SCHEDULE }, { $set: { lastSweepId: sweep._id } });
      }
    }
    const due = await this.sweeps.find({ status: 'running', nextActionAt: { $lte: now } }, { _id: 1 }).limit(50).lean();
    for (const { _id } of due) await this.app.outbox.withDocument(this.sweeps, _id, async () => {
      const doc = await this.sweeps.findById(_id).lean();
      if (!doc || doc.status !== 'running' || !doc.nextActionAt || doc.nextActionAt > now) return;
      const plan = planSweep(doc.participants, now, this.app.erasures.retry);
      const status = sweepStatus(plan.participants);
      const attempt = doc.attempt + (plan.redeliver.length ? 1 : 0);
      const set = { participants: plan.participants, attempt, status, nextActionAt: status === 'running' ? this.nextAction(plan.participants) : null };
      const update = { $set: set, $inc: { rev: 1 } };
      const ok = plan.redeliver.length
        ? await this.app.outbox.update(this.sweeps, { _id: doc._id, rev: doc.rev }, update, [this.requestedEvent(doc, attempt, plan.redeliver)])
        : (await this.sweeps.updateOne({ _id: doc._id, rev: doc.rev }, update)).matchedCount > 0;
      if (ok && plan.redeliver.length) this.log.info({ sweepId: doc._id, attempt, participants: plan.redeliver }, 'expiry sweep redelivered to silent participants');
      if (ok && status === 'failed') this.log.warn({ sweepId: doc._id }, 'expiry sweep failed: a participant never answered');
    });
  }

  /** @throws PIPP_SWEEP_NOT_FOUND (404). */
  async get(id: string): Promise<SweepDoc> {
    const doc = await this.sweeps.findById(id).lean();
    if (!doc) throw RetentionErrors.sweepNotFound(`No sweep ${id}`);
    return doc;
  }

  async list(limit: number, status?: SweepDoc['status']): Promise<SweepDoc[]> {
    return this.sweeps.find(status ? { status } : {}).sort({ startedAt: -1 }).limit(limit).lean();
  }

  /** When the next scheduled sweep runs (null when scheduled sweeps are off or none is planned yet). */
  async nextScheduled(): Promise<Date | null> {
    if (this.config.SWEEP_INTERVAL_MS <= 0) return null;
    return (await this.app.store.schedules.findById(SCHEDULE).lean())?.nextRunAt ?? null;
  }
}

export const sweepsPlugin = fp(async function sweeps(app: FastifyInstance, opts: { config: Config }) {
  app.decorate('sweeps', new SweepService(app, opts.config));
}, { name: 'retention-sweeps', dependencies: ['retention-models', 'retention-erasures', 'retention-policies'] });
