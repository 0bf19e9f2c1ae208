import type {
  DataCategory, ErasureGround, ErasureParticipant, ErasureScope, EventPayload,
} from '@pipp/contracts';
import { bulkWriteChunked, includeHidden, type OutboxEntry } from '@pipp/service-kit';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import { registeredParticipants } from '../config.js';
import { groundAdmissible, ORIGIN_GROUNDS, type ErasureOrigin } from '../domain/grounds.js';
import { legalHoldsFor, type LegalHoldItem, type SubjectHold } from '../domain/holds.js';
import {
  applyReply, isComplete, nextActionAt, operatorRetry, planSaga, RetryRefused, startParticipants, totals,
  type Escalation, type ParticipantProgress, type Participants, type Reply, type RetryPolicy,
} from '../domain/saga.js';
import { coversScope, participantsFor, scopeKey } from '../domain/scope.js';
import { RetentionErrors } from '../errors.js';
import type { Actor, ErasureRequestDoc, OpenCount } from './models.js';

const DAY_MS = 86_400_000;

/** How often (ms) a group of erasure requests (a shutdown's, a restore's) is counted for its view. */
const OPEN_COUNT_EVERY_MS = 15_000;

/** What opening an erasure request needs (policy 4.1, 4.2, 5.1, 2.4.2(5)). */
export interface OpenInput {
  subjectId: string;
  scope: ErasureScope;
  ground: ErasureGround;
  origin: ErasureOrigin;
  requestedBy: Actor;
  reference?: string | undefined;
  /** An earlier deadline than the default (staff only). */
  deadline?: Date | undefined;
  kind?: ErasureRequestDoc['kind'];
  /** Narrow the participants (purges, restores); default: `participantsFor(scope)`. */
  participants?: ErasureParticipant[] | undefined;
  purgeIsolated?: boolean | undefined;
  restoreId?: string | undefined;
  /** A deterministic id (purges, restores), so a repeated open is recognised. */
  id?: string | undefined;
  /** SHA-256 of a status key handed to the requester (`statusKeyHash`), added to the request opened or joined. */
  statusKeyHash?: string | undefined;
}

export type OpenOutcome = 'created' | 'joined' | 'refused' | 'exists';

declare module 'fastify' {
  interface FastifyInstance {
    /** The erasure saga's orchestrator (see ErasureService). */
    erasures: ErasureService;
  }
}

/**
 * The orchestrator of the erasure saga (DESIGN.md "The erasure saga"): opens requests (joining an
 * open one for the same subject and scope, refusing with a coded reason under a blocking legal hold),
 * publishes them through the outbox, applies participants' replies, redelivers with backoff, escalates
 * to the DPO, lets an operator retry, and closes a request only when every participant completed.
 * Every state change is one write of the request document, with the events announcing it in that same
 * write, made while holding the document's lock in this process and conditional on its `rev` against
 * other instances on MongoDB (`app.mongo.guarded`: on FerretDB the condition is neither atomic nor
 * indexed, and the process lock is the guard).
 */
export class ErasureService {
  readonly retry: RetryPolicy;
  readonly registered: ErasureParticipant[];
  private readonly dpoIds: string[];
  private readonly log: FastifyBaseLogger;

  constructor(private readonly app: FastifyInstance, private readonly config: Config) {
    this.retry = {
      baseMs: config.ERASURE_RETRY_BASE_MS,
      maxMs: config.ERASURE_RETRY_MAX_MS,
      maxAutoAttempts: config.ERASURE_MAX_AUTO_ATTEMPTS,
      escalateBeforeMs: config.ERASURE_ESCALATE_BEFORE_HOURS * 3600_000,
    };
    this.registered = registeredParticipants(config);
    this.dpoIds = config.DPO_ACCOUNT_IDS.split(',').filter(Boolean);
    this.log = app.log.child({ component: 'erasure-saga' });
  }

  private get requests() {
    return this.app.store.requests;
  }

  /**
   * Opens an erasure request, or joins the open one for the same subject and scope (an open account
   * erasure also absorbs a category erasure; a join with an earlier deadline moves the request's
   * deadline up), or records it refused (blocking legal hold, code PIPP_ERASURE_LEGAL_HOLD, clause 4.1).
   * @throws PIPP_ERASURE_GROUND_NOT_ADMISSIBLE (400) when the origin may not invoke the ground.
   * @throws PIPP_BAD_TIME (400) when a given deadline is not in the future, or later than the default
   * (`ERASURE_DEADLINE_DAYS` from now: a later one would put off the DPO's escalations).
   */
  async open(input: OpenInput, now = new Date()): Promise<{ request: ErasureRequestDoc; outcome: OpenOutcome }> {
    if (!groundAdmissible(input.origin, input.ground)) {
      throw RetentionErrors.groundNotAdmissible(`A request from ${input.origin === 'subject' ? 'a data subject' : `origin ${input.origin}`} may invoke ${ORIGIN_GROUNDS[input.origin].join(', ')}, not ${input.ground}`, { clause: input.ground });
    }
    if (input.deadline && input.deadline <= now) throw RetentionErrors.badTime('The deadline must be in the future');
    const latest = new Date(now.getTime() + this.config.ERASURE_DEADLINE_DAYS * DAY_MS);
    if (input.deadline && input.deadline > latest) {
      throw RetentionErrors.badTime(`A deadline can only be earlier than the default of ${this.config.ERASURE_DEADLINE_DAYS} days: at the latest ${latest.toISOString()}`, { clause: '4.2' });
    }
    const kind = input.kind ?? 'erasure';
    const key = scopeKey(input.scope);
    const id = input.id ?? `er-${randomUUID()}`;
    const openKey = kind === 'erasure' ? `erasure|${input.subjectId}|${key}` : `${kind}|${input.subjectId}|${key}|${id}`;

    for (let round = 0; round < 5; round += 1) {
      if (input.id) {
        const existing = await this.requests.findById(input.id).lean();
        if (existing) return { request: existing, outcome: 'exists' };
      }
      if (kind === 'erasure') {
        const joined = await this.joinOpen(input, openKey, now);
        if (joined) return { request: joined, outcome: 'joined' };
      }

      const [holds, policies] = kind === 'purge'
        ? [[], []]
        : await Promise.all([
          this.app.store.holds.find({ subjectId: input.subjectId, status: 'active', until: { $gt: now } }).lean(),
          this.app.policies.current(),
        ]);
      const decided = legalHoldsFor(input.scope, holds.map((h): SubjectHold => ({ holdId: h._id, categories: h.categories, mode: h.mode, legalBasis: h.legalBasis, evidenceRef: h.evidenceRef, until: h.until })), policies, now);
      const deadline = input.deadline ?? new Date(now.getTime() + this.config.ERASURE_DEADLINE_DAYS * DAY_MS);
      const base = {
        _id: id, kind, subjectId: input.subjectId, scope: input.scope, scopeKey: key, ground: input.ground, origin: input.origin,
        requestedBy: input.requestedBy, ...(input.reference ? { reference: input.reference } : {}),
        deadline, createdAt: now, updatedAt: now, attempt: 1, escalations: [], joins: [], totals: { erased: 0, anonymized: 0, kept: 0 }, rev: 0,
        ...(input.statusKeyHash ? { statusKeys: [input.statusKeyHash] } : {}),
        ...(input.purgeIsolated ? { purgeIsolated: true } : {}), ...(input.restoreId ? { restoreId: input.restoreId } : {}),
      };
      try {
        if (decided.refusal) {
          const doc = { ...base, openKey: `closed:${id}`, status: 'refused' as const, refusal: decided.refusal, legalHolds: [], participants: {}, nextActionAt: null };
          await this.requests.create(doc);
          this.log.info({ requestId: id, subjectId: input.subjectId, errorCode: decided.refusal.code }, 'erasure request refused');
          return { request: doc as ErasureRequestDoc, outcome: 'refused' };
        }
        const participants = input.participants ?? participantsFor(input.scope, this.registered);
        const tracked = startParticipants(participants, now, this.retry);
        const doc = {
          ...base, openKey, status: 'in-progress' as const, legalHolds: decided.holds, participants: tracked,
          nextActionAt: nextActionAt(tracked, deadline, new Set(), this.retry),
        };
        await this.app.outbox.insert(this.requests, doc as unknown as Record<string, unknown>, [this.requestedEvent(doc as ErasureRequestDoc, 1, participants)]);
        if (kind === 'erasure') await this.pointOpenKey(openKey, id);
        this.log.info({ requestId: id, subjectId: input.subjectId, ground: input.ground, origin: input.origin, kind, participants }, 'erasure request opened');
        return { request: doc as ErasureRequestDoc, outcome: 'created' };
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
        // Raced with another request for the same subject and scope (or the same id): join it. Its
        // pointer may be missing (written just after its insert, or lost in a crash): find it the slow way.
        if (kind === 'erasure' && !(await this.pointsAtOpen(openKey))) {
          const holder = await this.requests.findOne({ openKey }, { _id: 1 }).lean();
          if (holder) await this.pointOpenKey(openKey, holder._id);
        }
      }
    }
    throw new Error('could not open or join an erasure request after repeated races');
  }

  /** Joins the open request for the same subject and scope, or an open account erasure that covers it. */
  private async joinOpen(input: OpenInput, openKey: string, now: Date): Promise<ErasureRequestDoc | null> {
    const keys = [openKey];
    if (input.scope.kind === 'categories') keys.push(`erasure|${input.subjectId}|account`);
    for (const key of keys) {
      const pointer = await this.app.store.openRequests.findById(key).lean();
      if (!pointer) continue;
      const join = { at: now, origin: input.origin, ground: input.ground, requestedBy: input.requestedBy };
      // Read once, under the request's lock: the request it points at must still be open and cover the scope.
      const updated = await this.app.outbox.withDocument(this.requests, pointer.requestId, async () => {
        const current = await this.requests.findById(pointer.requestId).lean();
        if (!isOpenAt(current, key) || !coversScope(current.scope, input.scope)) return null;
        const push = input.statusKeyHash ? { joins: join, statusKeys: input.statusKeyHash } : { joins: join };
        // The earlier deadline of the two holds (and the escalations are planned from it).
        const sooner = input.deadline && input.deadline < current.deadline
          ? { deadline: input.deadline, nextActionAt: nextActionAt(current.participants, input.deadline, new Set(current.escalations.map((e) => e.level)), this.retry) }
          : {};
        return this.requests.findOneAndUpdate(this.app.mongo.guarded({ _id: current._id, rev: current.rev }), { $push: push, $set: { updatedAt: now, ...sooner }, $inc: { rev: 1 } }, { new: true })
          .select(includeHidden(this.requests)).lean();
      });
      if (!updated) continue;
      this.log.info({ requestId: updated._id, subjectId: input.subjectId }, 'erasure request joined the open one');
      return updated;
    }
    return null;
  }

  /** True when an `openKey`'s pointer leads to an open request (a pointer to a closed or missing one is stale). */
  private async pointsAtOpen(openKey: string): Promise<boolean> {
    const pointer = await this.app.store.openRequests.findById(openKey).lean();
    return pointer ? isOpenAt(await this.requests.findById(pointer.requestId).lean(), openKey) : false;
  }

  /** Points `openKey` at a request (after its insert, or to repair a pointer lost in a crash). */
  private async pointOpenKey(openKey: string, requestId: string): Promise<void> {
    await this.app.outbox.withDocument(this.app.store.openRequests, openKey, () => this.app.store.openRequests.updateOne({ _id: openKey }, { $set: { requestId } }, { upsert: true }));
  }

  /** Removes the pointer of a closed request (unless it already points at a newer one). */
  private async unpointOpenKey(openKey: string, requestId: string): Promise<void> {
    await this.app.outbox.withDocument(this.app.store.openRequests, openKey, async () => {
      const pointer = await this.app.store.openRequests.findById(openKey).lean();
      if (pointer?.requestId === requestId) await this.app.store.openRequests.deleteOne({ _id: openKey });
    });
  }

  /** The `privacy.erasure.requested` event of a request at an attempt, for some participants. */
  requestedEvent(doc: Pick<ErasureRequestDoc, '_id' | 'subjectId' | 'scope' | 'ground' | 'origin' | 'requestedBy' | 'legalHolds' | 'deadline' | 'purgeIsolated' | 'restoreId'>, attempt: number, participants: ErasureParticipant[]): OutboxEntry {
    const payload: EventPayload<'privacy.erasure.requested'> = {
      requestId: doc._id,
      subjectId: doc.subjectId,
      scope: doc.scope,
      ground: doc.ground,
      origin: doc.origin,
      requestedBy: { role: doc.requestedBy.role, actorId: doc.requestedBy.actorId },
      legalHolds: doc.legalHolds.map((h: LegalHoldItem) => ({ category: h.category, legalBasis: h.legalBasis, evidenceRef: h.evidenceRef, purgeAt: new Date(h.purgeAt).toISOString() })),
      deadline: new Date(doc.deadline).toISOString(),
      attempt,
      participants,
      ...(doc.purgeIsolated ? { purgeIsolated: true } : {}),
      ...(doc.restoreId ? { restoreId: doc.restoreId } : {}),
    };
    return this.app.outbox.entry('privacy.erasure.requested', { subject: doc.subjectId, correlationId: doc._id, payload });
  }

  /**
   * Applies participants' replies (consumer of `privacy.erasure.participant-replied`; the replies about
   * one request that arrive together are applied in one write). What they kept is recorded first
   * (idempotent), then the request; the write that completes the request also carries
   * `privacy.erasure.completed`. Unknown or closed requests and replies that change nothing are
   * ignored. One read-modify-write at a time per request in this process (`withDocument`), and
   * conditional on `rev` against other instances on MongoDB.
   */
  async applyReplies(replies: Reply[], now = new Date()): Promise<void> {
    const byRequest = new Map<string, Reply[]>();
    for (const r of replies) byRequest.set(r.requestId, [...(byRequest.get(r.requestId) ?? []), r]);
    for (const [requestId, list] of byRequest) await this.app.outbox.withDocument(this.requests, requestId, () => this.applyLocked(requestId, list, now));
  }

  private async applyLocked(requestId: string, replies: Reply[], now: Date): Promise<void> {
    for (let round = 0; round < 20; round += 1) {
      const doc = await this.requests.findById(requestId).lean();
      if (!doc) { this.log.warn({ requestId, participants: replies.map((r) => r.participant) }, 'reply for an unknown erasure request ignored'); return; }
      if (doc.status !== 'in-progress') return;
      let next = doc.participants;
      const applied: Reply[] = [];
      for (const reply of replies) {
        if (reply.subjectId !== doc.subjectId) continue;
        const after = applyReply(next, reply, now, this.retry);
        if (!after) continue;
        next = after;
        applied.push(reply);
      }
      if (!applied.length) return;
      for (const reply of applied) if (reply.status === 'completed' && reply.kept.length) await this.recordKept(reply, now);
      const complete = isComplete(next);
      const fired = new Set(doc.escalations.map((e) => e.level));
      const set: Record<string, unknown> = { participants: next, totals: totals(next), updatedAt: now, nextActionAt: complete ? null : nextActionAt(next, doc.deadline, fired, this.retry) };
      if (complete) Object.assign(set, { status: 'completed', completedAt: now, openKey: `closed:${doc._id}` });
      const entries = complete && doc.kind === 'erasure'
        ? [this.app.outbox.entry('privacy.erasure.completed', { subject: doc.subjectId, correlationId: doc._id, payload: { requestId: doc._id, subjectId: doc.subjectId, completedAt: now.toISOString(), counts: totals(next) } })]
        : [];
      const guard = this.app.mongo.guarded({ _id: doc._id, rev: doc.rev });
      const written = entries.length
        ? await this.app.outbox.update(this.requests, guard, { $set: set, $inc: { rev: 1 } }, entries)
        : (await this.requests.updateOne(guard, { $set: set, $inc: { rev: 1 } })).matchedCount > 0;
      if (!written) continue; // another instance wrote meanwhile: read again
      for (const reply of applied) {
        this.log.info({ requestId, participant: reply.participant, state: next[reply.participant]!.state, attempt: reply.attempt, counts: reply.counts }, 'erasure participant replied');
      }
      if (complete) {
        this.log.info({ requestId, subjectId: doc.subjectId, kind: doc.kind, totals: totals(next), ms: now.getTime() - doc.createdAt.getTime() }, 'erasure request completed');
        await this.afterCompletion(doc, now);
      }
      return;
    }
    throw new Error(`erasure request ${requestId}: too many concurrent writes`);
  }

  /**
   * Records what a participant kept by law (idempotent upserts keyed by request, participant and
   * category), before the request document says the participant completed: a crash in between is
   * repaired by the redelivered reply.
   */
  private async recordKept(reply: Reply, now: Date) {
    await bulkWriteChunked(reply.kept.map((k) => ({
      updateOne: {
        filter: { _id: `${reply.requestId}:${reply.participant}:${k.category}` },
        update: { $setOnInsert: { requestId: reply.requestId, subjectId: reply.subjectId, participant: reply.participant, category: k.category, legalBasis: k.legalBasis, purgeAt: new Date(k.purgeAt), reason: k.reason, state: 'isolated' as const, recordedAt: now } },
        upsert: true,
      },
    })), (chunk) => this.app.store.kept.bulkWrite(chunk, { ordered: false }));
  }

  /** What follows a completion outside the request document (repaired by `repair` after a crash). */
  private async afterCompletion(doc: ErasureRequestDoc, now: Date) {
    await this.recordSuppressionCompleted(doc._id, now);
    if (doc.kind === 'erasure') await this.unpointOpenKey(doc.openKey, doc._id);
    if (doc.kind === 'purge') {
      await this.app.store.kept.updateMany({ purgeRequestId: doc._id, state: 'purge-requested' }, { $set: { state: 'purged', purgedAt: now } });
    }
  }

  /**
   * The scheduler's pass (every SAGA_TICK_MS): redeliveries with backoff, narrowed to the silent or
   * failed participants; escalations to the DPO through `privacy.notification.requested`; and repairs
   * of what a crash between two writes may have left (suppression completion times, purged records).
   */
  async tick(now = new Date()): Promise<{ redelivered: number; escalated: number }> {
    let redelivered = 0;
    let escalated = 0;
    const due = await this.requests.find({ status: 'in-progress', nextActionAt: { $lte: now } }, { _id: 1 }).sort({ nextActionAt: 1 }).limit(200).lean();
    for (const { _id } of due) await this.app.outbox.withDocument(this.requests, _id, async () => {
      const doc = await this.requests.findById(_id).lean();
      if (!doc || doc.status !== 'in-progress' || !doc.nextActionAt || doc.nextActionAt > now) return;
      const plan = planSaga({ participants: doc.participants, attempt: doc.attempt, deadline: doc.deadline, escalations: doc.escalations }, now, this.retry);
      const entries: OutboxEntry[] = [];
      if (plan.redeliver.length) entries.push(this.requestedEvent(doc, plan.attempt, plan.redeliver));
      for (const e of plan.escalations) {
        const entry = this.escalationEvent(doc, e, plan.participants);
        if (entry) entries.push(entry);
      }
      const update = {
        $set: { participants: plan.participants, attempt: plan.attempt, nextActionAt: plan.nextActionAt, updatedAt: now },
        $inc: { rev: 1 },
        ...(plan.escalations.length ? { $push: { escalations: { $each: plan.escalations } } } : {}),
      };
      const guard = this.app.mongo.guarded({ _id: doc._id, rev: doc.rev });
      const written = entries.length
        ? await this.app.outbox.update(this.requests, guard, update, entries)
        : (await this.requests.updateOne(guard, update)).matchedCount > 0;
      if (!written) return; // another instance wrote meanwhile; the next pass sees the new state
      if (plan.redeliver.length) {
        redelivered += 1;
        this.log.info({ requestId: doc._id, attempt: plan.attempt, participants: plan.redeliver }, 'erasure request redelivered');
      }
      for (const e of plan.escalations) {
        escalated += 1;
        this.log.warn({ requestId: doc._id, level: e.level, participants: e.participants, deadline: doc.deadline }, 'erasure request escalated to the DPO');
      }
    });
    await this.repair(now);
    return { redelivered, escalated };
  }

  private escalationEvent(doc: ErasureRequestDoc, e: Escalation, participants: Participants): OutboxEntry | null {
    if (!this.dpoIds.length) return null;
    const lines = e.participants.map((name) => {
      const p = participants[name];
      return `- ${name}: ${p?.state ?? 'unknown'}${p?.exhausted ? ' (automatic retries used up)' : ''}${p?.error ? `, last error: ${p.error.slice(0, 200)}` : ''}`;
    });
    const why = { 'deadline-near': 'its deadline is near', overdue: 'its deadline has passed', 'retries-exhausted': 'a participant still fails after every automatic retry' }[e.level];
    return this.app.outbox.entry('privacy.notification.requested', {
      correlationId: doc._id,
      payload: {
        notificationId: `esc-${doc._id}-${e.level}`,
        kind: 'general',
        requestedBy: 'retention',
        audience: { subjectIds: this.dpoIds.slice(0, 1000) },
        title: `Erasure request ${doc._id} needs attention`.slice(0, 200),
        body: [
          `Erasure request ${doc._id} (ground ${doc.ground}, origin ${doc.origin}, subject id ${doc.subjectId}) is not complete and ${why}.`,
          `Deadline: ${doc.deadline.toISOString()}.`,
          'Participants not done:',
          ...lines,
          `An operator can retry: POST /v1/retention/admin/erasure-requests/${doc._id}/retry`,
        ].join('\n').slice(0, 8000),
        elements: { requestId: doc._id, level: e.level, deadline: doc.deadline.toISOString() },
        clause: '4.2',
      },
    });
  }

  /** Records when the erasure behind a suppression entry completed (once: the first time stays). */
  private async recordSuppressionCompleted(requestId: string, at: Date) {
    const suppressions = this.app.store.suppressions;
    await this.app.outbox.withDocument(suppressions, requestId, async () => {
      const s = await suppressions.findById(requestId, { completedAt: 1 }).lean();
      if (s && !s.completedAt) await suppressions.updateOne(this.app.mongo.guarded({ _id: requestId, completedAt: null }), { $set: { completedAt: at } });
    });
  }

  /** Fixes what a crash between a completion and its follow-up writes left behind (idempotent). */
  private async repair(now: Date) {
    const open = await this.app.store.suppressions.find({ status: 'active', completedAt: null }).limit(200).lean();
    if (open.length) {
      const done = await this.requests.find({ _id: { $in: open.map((s) => s._id) }, status: 'completed' }, { completedAt: 1 }).lean();
      for (const r of done) await this.recordSuppressionCompleted(r._id, r.completedAt ?? now);
    }
    const purging = await this.app.store.kept.find({ state: 'purge-requested' }, { purgeRequestId: 1 }).limit(200).lean();
    const ids = [...new Set(purging.map((k) => k.purgeRequestId).filter((x): x is string => Boolean(x)))];
    if (ids.length) {
      const done = await this.requests.find({ _id: { $in: ids }, status: 'completed' }, { _id: 1, completedAt: 1 }).lean();
      for (const r of done) await this.app.store.kept.updateMany({ purgeRequestId: r._id, state: 'purge-requested' }, { $set: { state: 'purged', purgedAt: r.completedAt ?? now } });
    }
  }

  /**
   * An operator's retry of failed or silent participants (default: every one not completed), now,
   * with a fresh budget of automatic retries.
   * @throws PIPP_ERASURE_REQUEST_NOT_FOUND (404), PIPP_ERASURE_NOT_RETRYABLE (409).
   */
  async operatorRetry(requestId: string, names: ErasureParticipant[] | undefined, now = new Date()): Promise<{ request: ErasureRequestDoc; participants: ErasureParticipant[] }> {
    return this.app.outbox.withDocument(this.requests, requestId, () => this.retryLocked(requestId, names, now));
  }

  private async retryLocked(requestId: string, names: ErasureParticipant[] | undefined, now: Date): Promise<{ request: ErasureRequestDoc; participants: ErasureParticipant[] }> {
    for (let round = 0; round < 10; round += 1) {
      const doc = await this.requests.findById(requestId).lean();
      if (!doc) throw RetentionErrors.requestNotFound(`No erasure request ${requestId}`);
      if (doc.status !== 'in-progress') throw RetentionErrors.notRetryable(`The request is ${doc.status}; nothing to retry`, { clause: '4.1' });
      let planned;
      try {
        planned = operatorRetry(doc.participants, doc.attempt, names, now, this.retry);
      } catch (err) {
        if (err instanceof RetryRefused) throw RetentionErrors.notRetryable(err.message, { clause: '4.1' });
        throw err;
      }
      const fired = new Set(doc.escalations.map((e) => e.level));
      const updated = await this.app.outbox.update(this.requests, this.app.mongo.guarded({ _id: doc._id, rev: doc.rev }), {
        $set: { participants: planned.participants, attempt: planned.attempt, updatedAt: now, nextActionAt: nextActionAt(planned.participants, doc.deadline, fired, this.retry) },
        $inc: { rev: 1 },
      }, [this.requestedEvent(doc, planned.attempt, planned.redeliver)]);
      if (!updated) continue;
      this.log.info({ requestId, attempt: planned.attempt, participants: planned.redeliver }, 'erasure request retried by an operator');
      return { request: updated.toObject() as ErasureRequestDoc, participants: planned.redeliver };
    }
    throw new Error(`erasure request ${requestId}: too many concurrent writes`);
  }

  /**
   * A legal hold placed while erasures of its subject are under way (policy 4.1, PIPL art. 47): every
   * open request of the subject (not purges) takes the hold's categories in its scope as legal holds,
   * whatever the hold's mode (for an erasure already under way a `block` hold cannot undo what was
   * erased; the rest is kept isolated until the hold ends instead of erased), and the participants not
   * yet completed are asked again with them, at the next attempt (their replies to the earlier attempt
   * still count: what they erased before the hold arrived is gone). Returns the ids of the requests changed.
   */
  async applyHold(hold: SubjectHold & { subjectId: string }, now = new Date()): Promise<string[]> {
    return this.changeOpenHolds(hold.subjectId, hold.holdId, now, (doc) => mergeHolds(doc.legalHolds, legalHoldsFor(doc.scope, [{ ...hold, mode: 'isolate' }], [], now).holds));
  }

  /**
   * A legal hold released (policy 4.1, 5.1: kept no longer than necessary): the open requests of its
   * subject drop what it held (unless another active hold holds it too), the participants not yet done
   * are asked again without it, and what participants already keep under it (kept-by-law records of
   * the subject with its basis and end date) is due for purging now. Returns the ids of the requests changed.
   */
  async releaseHold(hold: SubjectHold & { subjectId: string }, now = new Date()): Promise<string[]> {
    const fromHold = (h: LegalHoldItem) => h.legalBasis === hold.legalBasis && h.evidenceRef === hold.evidenceRef && new Date(h.purgeAt).getTime() === hold.until.getTime();
    const others = (await this.app.store.holds.find({ subjectId: hold.subjectId, status: 'active', until: { $gt: now }, _id: { $ne: hold.holdId } }).lean())
      .map((h): SubjectHold => ({ holdId: h._id, categories: h.categories, mode: 'isolate', legalBasis: h.legalBasis, evidenceRef: h.evidenceRef, until: h.until }));
    const changed = await this.changeOpenHolds(hold.subjectId, hold.holdId, now, (doc) => {
      if (!doc.legalHolds.some(fromHold)) return null;
      const kept = doc.legalHolds.filter((h) => !fromHold(h));
      return mergeHolds(kept, legalHoldsFor(doc.scope, others, [], now).holds) ?? kept;
    });
    await this.app.store.kept.updateMany(
      { subjectId: hold.subjectId, state: 'isolated', legalBasis: hold.legalBasis, purgeAt: hold.until },
      { $set: { purgeAt: now } },
    );
    return changed;
  }

  /**
   * Gives each open request of a subject (not purges) the legal holds `next` computes from it (null: no
   * change), and asks the participants not yet completed again with them, at the next attempt.
   */
  private async changeOpenHolds(subjectId: string, holdId: string, now: Date, next: (doc: ErasureRequestDoc) => LegalHoldItem[] | null): Promise<string[]> {
    const open = await this.requests.find({ subjectId, status: 'in-progress' }, { _id: 1 }).lean();
    const changed: string[] = [];
    for (const { _id } of open) {
      const applied = await this.app.outbox.withDocument(this.requests, _id, async () => {
        for (let round = 0; round < 10; round += 1) {
          const doc = await this.requests.findById(_id).lean();
          if (!doc || doc.status !== 'in-progress' || doc.kind === 'purge') return false;
          const holds = next(doc);
          const waiting = (Object.entries(doc.participants) as [ErasureParticipant, ParticipantProgress][]).filter(([, p]) => p.state !== 'completed').map(([n]) => n);
          if (!holds || !waiting.length) return false;
          const planned = operatorRetry(doc.participants, doc.attempt, waiting, now, this.retry);
          const fired = new Set(doc.escalations.map((e) => e.level));
          const updated = await this.app.outbox.update(this.requests, this.app.mongo.guarded({ _id: doc._id, rev: doc.rev }), {
            $set: { legalHolds: holds, participants: planned.participants, attempt: planned.attempt, updatedAt: now, nextActionAt: nextActionAt(planned.participants, doc.deadline, fired, this.retry) },
            $inc: { rev: 1 },
          }, [this.requestedEvent({ ...doc, legalHolds: holds }, planned.attempt, planned.redeliver)]);
          if (updated) {
            this.log.info({ requestId: doc._id, holdId, attempt: planned.attempt, participants: planned.redeliver, categories: holds.map((h) => h.category) }, 'legal holds of an open erasure request changed');
            return true;
          }
        }
        throw new Error(`erasure request ${_id}: too many concurrent writes`);
      });
      if (applied) changed.push(_id);
    }
    return changed;
  }

  /**
   * How far a group of erasure requests got (a shutdown's, by `reference`; a restore's, by
   * `restoreId`), for the group's completion and its view: whether one is still in progress (a search
   * that stops at the first) and, when the count stored in `last` is older than OPEN_COUNT_EVERY_MS or
   * no longer right at zero, a fresh count to store (`counted`). A count reads the whole request
   * collection on FerretDB, so views read the stored one instead of counting on every call.
   */
  async groupProgress(group: { reference: string } | { restoreId: string }, last: OpenCount, now: Date): Promise<{ anyOpen: boolean; counted?: Required<OpenCount> }> {
    const filter = { ...group, status: 'in-progress' };
    const anyOpen = !!await this.requests.exists(filter);
    const due = !last.openRequestsCountedAt || now.getTime() - last.openRequestsCountedAt.getTime() >= OPEN_COUNT_EVERY_MS;
    if (!due && (anyOpen || last.openRequests === 0)) return { anyOpen };
    return { anyOpen, counted: { openRequests: anyOpen ? await this.requests.countDocuments(filter) : 0, openRequestsCountedAt: now } };
  }

  /** The categories kept by law for a request, as its legal holds said (for views). */
  static keptCategories(doc: ErasureRequestDoc): DataCategory[] {
    return doc.legalHolds.map((h) => h.category);
  }
}

/** `current` with `added` merged in (per category, the later purge date wins), or null when nothing changes. */
function mergeHolds(current: LegalHoldItem[], added: LegalHoldItem[]): LegalHoldItem[] | null {
  const byCategory = new Map(current.map((h) => [h.category, h]));
  let changed = false;
  for (const h of added) {
    const prev = byCategory.get(h.category);
    if (prev && new Date(prev.purgeAt) >= h.purgeAt) continue;
    byCategory.set(h.category, h);
    changed = true;
  }
  return changed ? [...byCategory.values()].sort((a, b) => a.category.localeCompare(b.category)) : null;
}

/** True when `doc` is the open request of `openKey`. */
function isOpenAt(doc: ErasureRequestDoc | null, openKey: string): doc is ErasureRequestDoc {
  return doc?.status === 'in-progress' && doc.openKey === openKey;
}

export const erasuresPlugin = fp(async function erasures(app: FastifyInstance, opts: { config: Config }) {
  app.decorate('erasures', new ErasureService(app, opts.config));
  if (!opts.config.DPO_ACCOUNT_IDS) app.log.warn('DPO_ACCOUNT_IDS is empty: escalated erasure requests are only logged and listed, nobody is notified');
}, { name: 'retention-erasures', dependencies: ['retention-models'] });
