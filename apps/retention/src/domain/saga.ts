import type { DataCategory, ErasureParticipant, EventPayload, LegalBasis } from '@pipp/contracts';

/**
 * The erasure saga's bookkeeping (DESIGN.md "The erasure saga"; policy 4.1, 4.2, 2.4.2(5), 5.1), as
 * pure functions over plain data. The orchestrator stores the result in one document per request.
 *
 * Participant states: `requested` (asked, no answer yet) → `completed`, or `failed` (answered with a
 * failure; retried automatically with backoff), or `awaiting-recipients` (data-sharing erased but
 * recipients it notified (4.2-recipients) have not acknowledged; it replies again when they do).
 * A request completes only when every participant it waits for has answered `completed`; a request
 * that waits for nobody never completes.
 */
export type ParticipantState = 'requested' | 'completed' | 'failed' | 'awaiting-recipients';

export interface Counts { erased: number; anonymized: number; kept: number }

export interface KeptItem { category: DataCategory; legalBasis: LegalBasis; purgeAt: string; reason: string }

export interface ParticipantProgress {
  state: ParticipantState;
  /** The request attempt at which it was last asked (1 = the first publication). */
  attempt: number;
  /** Automatic redeliveries since the start or the last operator retry. */
  autoAttempts: number;
  requestedAt: Date;
  /** When to redeliver if still silent or failed; null when no automatic retry is due. */
  nextRetryAt: Date | null;
  /** True once automatic retries are used up (an operator retry resets it). */
  exhausted: boolean;
  repliedAt?: Date | undefined;
  repliedAttempt?: number | undefined;
  counts?: Counts | undefined;
  kept?: KeptItem[] | undefined;
  pendingRecipients?: string[] | undefined;
  error?: string | undefined;
}

export type Participants = Partial<Record<ErasureParticipant, ParticipantProgress>>;

export type EscalationLevel = 'deadline-near' | 'overdue' | 'retries-exhausted';
export interface Escalation { level: EscalationLevel; at: Date; participants: ErasureParticipant[] }

export interface RetryPolicy {
  /** First redelivery delay (ms); doubles per automatic attempt. */
  baseMs: number;
  /** Upper bound of a redelivery delay (ms). */
  maxMs: number;
  /** Automatic redeliveries before a participant is left to an operator (and the DPO is told). */
  maxAutoAttempts: number;
  /** How long before the deadline the DPO is told about a request not yet complete (ms). */
  escalateBeforeMs: number;
}

/** The delay before redelivery number `n` (1-based), ms: base × 2^(n−1), capped. */
export function backoffMs(n: number, policy: RetryPolicy): number {
  return Math.min(policy.baseMs * 2 ** Math.max(0, n - 1), policy.maxMs);
}

/** Every participant asked at attempt 1, now. */
export function startParticipants(list: readonly ErasureParticipant[], now: Date, policy: RetryPolicy): Participants {
  const out: Participants = {};
  for (const p of list) {
    out[p] = { state: 'requested', attempt: 1, autoAttempts: 0, requestedAt: now, nextRetryAt: new Date(now.getTime() + backoffMs(1, policy)), exhausted: false };
  }
  return out;
}

/** True when at least one participant is tracked and every one of them completed. */
export function isComplete(participants: Participants): boolean {
  const all = Object.values(participants);
  return all.length > 0 && all.every((p) => p!.state === 'completed');
}

/** Sum of the counts every participant reported. */
export function totals(participants: Participants): Counts {
  const t = { erased: 0, anonymized: 0, kept: 0 };
  for (const p of Object.values(participants)) {
    if (!p?.counts) continue;
    t.erased += p.counts.erased;
    t.anonymized += p.counts.anonymized;
    t.kept += p.counts.kept;
  }
  return t;
}

export type Reply = EventPayload<'privacy.erasure.participant-replied'>;

/**
 * Applies a participant's reply. Returns the new participants map, or null when the reply changes
 * nothing: unknown participant, a participant already completed (completion is final), a failure
 * older than the attempt in flight, or a repeat of what is recorded (duplicates are harmless).
 * A failure schedules an automatic redelivery with backoff until the budget is used up.
 */
export function applyReply(participants: Participants, reply: Reply, now: Date, policy: RetryPolicy): Participants | null {
  const current = participants[reply.participant];
  if (!current || current.state === 'completed') return null;
  if (reply.status === 'failed' && reply.attempt < current.attempt) return null;
  const pending = reply.pendingRecipients ?? [];
  const state: ParticipantState = reply.status === 'failed' ? 'failed' : pending.length ? 'awaiting-recipients' : 'completed';
  if (current.state === state && current.repliedAttempt === reply.attempt && sameList(current.pendingRecipients, pending)) return null;
  let nextRetryAt: Date | null = null;
  let exhausted = current.exhausted;
  if (state === 'failed') {
    if (current.autoAttempts < policy.maxAutoAttempts) nextRetryAt = new Date(now.getTime() + backoffMs(current.autoAttempts + 1, policy));
    else exhausted = true;
  }
  return {
    ...participants,
    [reply.participant]: {
      ...current,
      state,
      nextRetryAt,
      exhausted,
      repliedAt: now,
      repliedAttempt: reply.attempt,
      counts: reply.counts,
      kept: reply.kept,
      pendingRecipients: pending.length ? pending : undefined,
      error: reply.status === 'failed' ? (reply.error ?? 'failed without a reason') : undefined,
    },
  };
}

function sameList(a: string[] | undefined, b: string[]): boolean {
  const x = a ?? [];
  return x.length === b.length && x.every((v, i) => v === b[i]);
}

/** What the scheduler must do for one request now. */
export interface SagaPlan {
  /** Participants to ask again (silent past their retry time, or failed with a retry due). */
  redeliver: ErasureParticipant[];
  /** The attempt number of the redelivery (one more than any attempt so far). */
  attempt: number;
  escalations: Escalation[];
  participants: Participants;
  /** When the scheduler should look at the request again; null when nothing is pending. */
  nextActionAt: Date | null;
}

/**
 * Plans the automatic work on an open request at `now`: redeliveries with backoff (a participant
 * that stays silent or failed after `maxAutoAttempts` is marked exhausted and left to an operator),
 * and escalations to the DPO (each level once): `retries-exhausted`, `deadline-near`
 * (`escalateBeforeMs` before the deadline), `overdue` (deadline passed). Pure.
 */
export function planSaga(input: { participants: Participants; attempt: number; deadline: Date; escalations: Escalation[] }, now: Date, policy: RetryPolicy): SagaPlan {
  const t = now.getTime();
  const participants: Participants = { ...input.participants };
  const redeliver: ErasureParticipant[] = [];
  const attempt = input.attempt + 1;
  for (const [name, p] of Object.entries(participants) as [ErasureParticipant, ParticipantProgress][]) {
    const waiting = p.state === 'requested' || p.state === 'failed';
    if (!waiting || !p.nextRetryAt || p.nextRetryAt.getTime() > t) continue;
    if (p.autoAttempts >= policy.maxAutoAttempts) {
      participants[name] = { ...p, nextRetryAt: null, exhausted: true };
      continue;
    }
    const n = p.autoAttempts + 1;
    redeliver.push(name);
    participants[name] = {
      ...p, state: 'requested', attempt, autoAttempts: n, requestedAt: now, error: p.error,
      nextRetryAt: new Date(t + backoffMs(n + 1, policy)),
    };
  }
  const done = new Set(input.escalations.map((e) => e.level));
  const open = (Object.entries(participants) as [ErasureParticipant, ParticipantProgress][]).filter(([, p]) => p.state !== 'completed').map(([n]) => n);
  const escalations: Escalation[] = [];
  const exhausted = (Object.entries(participants) as [ErasureParticipant, ParticipantProgress][]).filter(([, p]) => p.exhausted && p.state !== 'completed').map(([n]) => n);
  if (exhausted.length && !done.has('retries-exhausted')) escalations.push({ level: 'retries-exhausted', at: now, participants: exhausted });
  const deadline = input.deadline.getTime();
  if (open.length && t >= deadline && !done.has('overdue')) escalations.push({ level: 'overdue', at: now, participants: open });
  else if (open.length && t >= deadline - policy.escalateBeforeMs && !done.has('deadline-near') && !done.has('overdue')) {
    escalations.push({ level: 'deadline-near', at: now, participants: open });
  }
  const fired = new Set([...done, ...escalations.map((e) => e.level)]);
  return { redeliver, attempt: redeliver.length ? attempt : input.attempt, escalations, participants, nextActionAt: nextActionAt(participants, input.deadline, fired, policy) };
}

/**
 * The earliest moment something may be due: a participant's retry, the escalation of one out of
 * automatic retries, the deadline-near warning or the deadline itself (levels already fired
 * excluded). Null when every participant completed.
 */
export function nextActionAt(participants: Participants, deadline: Date, fired: Set<EscalationLevel>, policy: RetryPolicy): Date | null {
  const list = Object.values(participants);
  if (!list.length || list.every((p) => p!.state === 'completed')) return null;
  const times: number[] = [];
  for (const p of list) {
    if (p!.nextRetryAt && (p!.state === 'requested' || p!.state === 'failed')) times.push(p!.nextRetryAt.getTime());
    // A participant out of automatic retries is due for the DPO at once (once).
    if (p!.exhausted && p!.state !== 'completed' && !fired.has('retries-exhausted')) times.push((p!.repliedAt ?? p!.requestedAt).getTime());
  }
  if (!fired.has('overdue')) {
    times.push(deadline.getTime());
    if (!fired.has('deadline-near')) times.push(deadline.getTime() - policy.escalateBeforeMs);
  }
  return times.length ? new Date(Math.min(...times)) : null;
}

/** Why an operator retry cannot happen. */
export class RetryRefused extends Error {}

/**
 * An operator's retry (policy 4.1): asks the named participants again now (default: every one not
 * completed), with a fresh budget of automatic retries. Refused (RetryRefused) for an unknown or
 * completed participant, or when nothing is left to retry.
 */
export function operatorRetry(participants: Participants, attempt: number, names: ErasureParticipant[] | undefined, now: Date, policy: RetryPolicy): { participants: Participants; redeliver: ErasureParticipant[]; attempt: number } {
  const targets = names ?? (Object.entries(participants) as [ErasureParticipant, ParticipantProgress][]).filter(([, p]) => p.state !== 'completed').map(([n]) => n);
  if (!targets.length) throw new RetryRefused('every participant has completed; nothing to retry');
  const next = attempt + 1;
  const out: Participants = { ...participants };
  for (const name of targets) {
    const p = participants[name];
    if (!p) throw new RetryRefused(`${name} is not a participant of this request`);
    if (p.state === 'completed') throw new RetryRefused(`${name} has already completed`);
    out[name] = { ...p, state: 'requested', attempt: next, autoAttempts: 0, exhausted: false, requestedAt: now, nextRetryAt: new Date(now.getTime() + backoffMs(1, policy)) };
  }
  return { participants: out, redeliver: targets, attempt: next };
}
