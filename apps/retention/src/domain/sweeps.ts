import type { ErasureParticipant, EventPayload } from '@pipp/contracts';
import { backoffMs, type Counts, type RetryPolicy } from './saga.js';

/**
 * Expiry sweeps (policy 5.1, 5.2, 4.2.5): every participant applies the retention rules to what it
 * holds, in batches, and reports progress. A sweep is tracked like an erasure: per participant,
 * redelivered with backoff while a participant stays silent, complete when all completed.
 */
export type SweepParticipantState = 'requested' | 'in-progress' | 'completed' | 'failed';

export interface SweepProgress {
  state: SweepParticipantState;
  attempt: number;
  autoAttempts: number;
  counts: Counts;
  batches: number;
  lastReplyAt?: Date | undefined;
  nextRetryAt: Date | null;
  error?: string | undefined;
}

export type SweepParticipants = Partial<Record<ErasureParticipant, SweepProgress>>;

export function startSweep(list: readonly ErasureParticipant[], now: Date, policy: RetryPolicy): SweepParticipants {
  const out: SweepParticipants = {};
  for (const p of list) out[p] = { state: 'requested', attempt: 1, autoAttempts: 0, counts: { erased: 0, anonymized: 0, kept: 0 }, batches: 0, nextRetryAt: new Date(now.getTime() + backoffMs(1, policy)) };
  return out;
}

export type SweepReply = EventPayload<'privacy.retention.sweep-replied'>;

/**
 * Applies a progress report or result. Counts and batches are the participant's running totals
 * (a later report replaces an earlier one, never adds to it, so repeats are harmless). A report keeps
 * a participant alive: its retry clock restarts. Returns null when nothing changes.
 */
export function applySweepReply(participants: SweepParticipants, reply: SweepReply, now: Date, policy: RetryPolicy): SweepParticipants | null {
  const current = participants[reply.participant];
  if (!current || current.state === 'completed') return null;
  if (reply.status !== 'completed' && current.state === 'in-progress' && reply.batches < current.batches) return null;
  const state: SweepParticipantState = reply.status;
  return {
    ...participants,
    [reply.participant]: {
      ...current,
      state,
      counts: reply.counts,
      batches: reply.batches,
      lastReplyAt: now,
      error: reply.error,
      nextRetryAt: state === 'completed' ? null
        : state === 'failed' ? (current.autoAttempts < policy.maxAutoAttempts ? new Date(now.getTime() + backoffMs(current.autoAttempts + 1, policy)) : null)
          : new Date(now.getTime() + backoffMs(current.autoAttempts + 1, policy)),
    },
  };
}

/** Participants to ask again now (silent or failed past their retry time), and the updated map. */
export function planSweep(participants: SweepParticipants, now: Date, policy: RetryPolicy): { redeliver: ErasureParticipant[]; participants: SweepParticipants } {
  const out: SweepParticipants = { ...participants };
  const redeliver: ErasureParticipant[] = [];
  for (const [name, p] of Object.entries(participants) as [ErasureParticipant, SweepProgress][]) {
    if (p.state === 'completed' || !p.nextRetryAt || p.nextRetryAt > now) continue;
    if (p.autoAttempts >= policy.maxAutoAttempts) { out[name] = { ...p, nextRetryAt: null, state: 'failed', error: p.error ?? 'no answer after every automatic retry' }; continue; }
    const n = p.autoAttempts + 1;
    redeliver.push(name);
    out[name] = { ...p, state: p.state === 'in-progress' ? 'in-progress' : 'requested', attempt: p.attempt + 1, autoAttempts: n, nextRetryAt: new Date(now.getTime() + backoffMs(n + 1, policy)) };
  }
  return { redeliver, participants: out };
}

/** The sweep's overall status: completed when all completed, failed when someone gave up, else running. */
export function sweepStatus(participants: SweepParticipants): 'running' | 'completed' | 'failed' {
  const all = Object.values(participants);
  if (all.length && all.every((p) => p!.state === 'completed')) return 'completed';
  if (all.some((p) => p!.state === 'failed' && !p!.nextRetryAt)) return 'failed';
  return 'running';
}

/** Sum of every participant's counts. */
export function sweepTotals(participants: SweepParticipants): Counts & { batches: number } {
  const t = { erased: 0, anonymized: 0, kept: 0, batches: 0 };
  for (const p of Object.values(participants)) {
    t.erased += p!.counts.erased;
    t.anonymized += p!.counts.anonymized;
    t.kept += p!.counts.kept;
    t.batches += p!.batches;
  }
  return t;
}
