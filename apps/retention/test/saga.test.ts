// The saga's bookkeeping as pure rules: who is waited for, what a reply changes, when to redeliver,
// when to tell the DPO, and when a request is complete (policy 4.1, 4.2).
import type { ErasureParticipant } from '@pipp/contracts';
import { describe, expect, it } from 'vitest';
import {
  applyReply, backoffMs, isComplete, nextActionAt, operatorRetry, planSaga, RetryRefused, startParticipants, totals,
  type Participants, type Reply, type RetryPolicy,
} from '../src/domain/saga.js';
import { coversScope, participantsFor, scopeKey } from '../src/domain/scope.js';

const policy: RetryPolicy = { baseMs: 1000, maxMs: 8000, maxAutoAttempts: 3, escalateBeforeMs: 3600_000 };
const t0 = new Date('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(t0.getTime() + ms);
const ALL: ErasureParticipant[] = ['identity', 'consent', 'data-sharing', 'incident', 'retention'];

const reply = (participant: ErasureParticipant, over: Partial<Reply> = {}): Reply => ({
  requestId: 'er-1', subjectId: 's-1', participant, attempt: 1, status: 'completed',
  counts: { erased: 2, anonymized: 1, kept: 0 }, kept: [], ...over,
});

describe('participants', () => {
  it('waits for every registered participant on an account erasure', () => {
    expect(participantsFor({ kind: 'account' }, ALL)).toEqual(ALL);
  });

  it('waits for the holders of the categories, and always for retention (backups)', () => {
    expect(participantsFor({ kind: 'categories', categories: ['activity-log'] }, ALL)).toEqual(['identity', 'retention']);
    expect(participantsFor({ kind: 'categories', categories: ['phone-number', 'sharing-record'] }, ALL)).toEqual(['identity', 'data-sharing', 'incident', 'retention']);
  });

  it('keys scopes canonically and knows an account erasure covers any category erasure', () => {
    expect(scopeKey({ kind: 'categories', categories: ['profile', 'activity-log'] })).toBe(scopeKey({ kind: 'categories', categories: ['activity-log', 'profile'] }));
    expect(coversScope({ kind: 'account' }, { kind: 'categories', categories: ['profile'] })).toBe(true);
    expect(coversScope({ kind: 'categories', categories: ['profile'] }, { kind: 'account' })).toBe(false);
    expect(coversScope({ kind: 'categories', categories: ['profile', 'session'] }, { kind: 'categories', categories: ['session'] })).toBe(true);
  });
});

describe('completion', () => {
  it('never counts a request that waits for nobody as complete', () => {
    expect(isComplete({})).toBe(false);
  });

  it('completes only when every participant answered completed', () => {
    let p: Participants = startParticipants(['identity', 'retention'], t0, policy);
    expect(isComplete(p)).toBe(false);
    p = applyReply(p, reply('identity'), at(10), policy)!;
    expect(isComplete(p)).toBe(false);
    p = applyReply(p, reply('retention', { counts: { erased: 0, anonymized: 0, kept: 1 } }), at(20), policy)!;
    expect(isComplete(p)).toBe(true);
    expect(totals(p)).toEqual({ erased: 2, anonymized: 1, kept: 1 });
    expect(nextActionAt(p, at(1e9), new Set(), policy)).toBeNull();
  });

  it('waits for data-sharing while recipients have not acknowledged, then completes on its second reply', () => {
    let p = startParticipants(['data-sharing'], t0, policy);
    p = applyReply(p, reply('data-sharing', { pendingRecipients: ['rcp-1'] }), at(10), policy)!;
    expect(p['data-sharing']!.state).toBe('awaiting-recipients');
    expect(isComplete(p)).toBe(false);
    p = applyReply(p, reply('data-sharing', { pendingRecipients: [] }), at(20), policy)!;
    expect(isComplete(p)).toBe(true);
  });

  it('treats completion as final and ignores repeats, unknown participants and stale failures', () => {
    let p = startParticipants(['identity'], t0, policy);
    p = applyReply(p, reply('identity'), at(10), policy)!;
    expect(applyReply(p, reply('identity', { status: 'failed', attempt: 2 }), at(20), policy)).toBeNull();
    expect(applyReply(p, reply('consent'), at(20), policy)).toBeNull();
    let q = startParticipants(['identity'], t0, policy);
    q = { identity: { ...q.identity!, attempt: 3 } };
    expect(applyReply(q, reply('identity', { status: 'failed', attempt: 2 }), at(20), policy)).toBeNull();
    const failed = applyReply(q, reply('identity', { status: 'failed', attempt: 3, error: 'db down' }), at(20), policy)!;
    expect(applyReply(failed, reply('identity', { status: 'failed', attempt: 3, error: 'db down' }), at(30), policy)).toBeNull();
  });
});

describe('retries and escalation', () => {
  it('doubles the delay per attempt up to the cap', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(n, policy))).toEqual([1000, 2000, 4000, 8000, 8000]);
  });

  it('redelivers to silent participants only, narrowed, with a higher attempt and growing backoff', () => {
    let p = startParticipants(['identity', 'consent'], t0, policy);
    p = applyReply(p, reply('consent'), at(100), policy)!;
    expect(planSaga({ participants: p, attempt: 1, deadline: at(864e5), escalations: [] }, at(999), policy).redeliver).toEqual([]);
    const plan = planSaga({ participants: p, attempt: 1, deadline: at(864e5), escalations: [] }, at(1000), policy);
    expect(plan.redeliver).toEqual(['identity']);
    expect(plan.attempt).toBe(2);
    expect(plan.participants.identity).toMatchObject({ state: 'requested', attempt: 2, autoAttempts: 1 });
    expect(plan.participants.identity!.nextRetryAt).toEqual(at(3000));
    expect(plan.nextActionAt).toEqual(at(3000));
  });

  it('retries a failure with backoff, then leaves it to an operator and tells the DPO once', () => {
    let p = startParticipants(['identity'], t0, policy);
    let attempt = 1;
    let escalations: { level: 'deadline-near' | 'overdue' | 'retries-exhausted'; at: Date; participants: ErasureParticipant[] }[] = [];
    let now = t0.getTime();
    for (let i = 0; i < 3; i += 1) {
      p = applyReply(p, reply('identity', { status: 'failed', attempt, error: 'boom' }), new Date(now), policy)!;
      now = p.identity!.nextRetryAt!.getTime();
      const plan = planSaga({ participants: p, attempt, deadline: at(864e6), escalations }, new Date(now), policy);
      expect(plan.redeliver).toEqual(['identity']);
      ({ participants: p, attempt } = plan);
    }
    p = applyReply(p, reply('identity', { status: 'failed', attempt, error: 'boom' }), new Date(now), policy)!;
    expect(p.identity).toMatchObject({ state: 'failed', exhausted: true, nextRetryAt: null });
    // Due for the DPO at once, and not again once told.
    expect(nextActionAt(p, at(864e6), new Set(), policy)).toEqual(new Date(now));
    expect(nextActionAt(p, at(864e6), new Set(['retries-exhausted']), policy)).toEqual(at(864e6 - 3600_000));
    const plan = planSaga({ participants: p, attempt, deadline: at(864e6), escalations }, new Date(now + 1), policy);
    expect(plan.redeliver).toEqual([]);
    expect(plan.escalations.map((e) => e.level)).toEqual(['retries-exhausted']);
    escalations = plan.escalations;
    expect(planSaga({ participants: p, attempt, deadline: at(864e6), escalations }, new Date(now + 2), policy).escalations).toEqual([]);
    // An operator retry starts a fresh budget.
    const retried = operatorRetry(p, attempt, undefined, new Date(now + 3), policy);
    expect(retried.redeliver).toEqual(['identity']);
    expect(retried.participants.identity).toMatchObject({ state: 'requested', autoAttempts: 0, exhausted: false, attempt: attempt + 1 });
  });

  it('tells the DPO when the deadline nears and again when it passes, only about what is not done', () => {
    let p = startParticipants(['identity', 'consent'], t0, policy);
    p = applyReply(p, reply('consent'), at(10), policy)!;
    p = { ...p, identity: { ...p.identity!, nextRetryAt: null } };
    const deadline = at(2 * 3600_000);
    expect(planSaga({ participants: p, attempt: 1, deadline, escalations: [] }, at(3600_000 - 1), policy).escalations).toEqual([]);
    const near = planSaga({ participants: p, attempt: 1, deadline, escalations: [] }, at(3600_000), policy);
    expect(near.escalations).toEqual([{ level: 'deadline-near', at: at(3600_000), participants: ['identity'] }]);
    expect(near.nextActionAt).toEqual(deadline);
    const over = planSaga({ participants: p, attempt: 1, deadline, escalations: near.escalations }, deadline, policy);
    expect(over.escalations.map((e) => e.level)).toEqual(['overdue']);
    expect(over.nextActionAt).toBeNull();
  });

  it('refuses an operator retry of a completed or unknown participant', () => {
    let p = startParticipants(['identity'], t0, policy);
    p = applyReply(p, reply('identity'), at(10), policy)!;
    expect(() => operatorRetry(p, 1, ['identity'], at(20), policy)).toThrow(RetryRefused);
    expect(() => operatorRetry(p, 1, undefined, at(20), policy)).toThrow(/nothing to retry/);
    expect(() => operatorRetry(startParticipants(['identity'], t0, policy), 1, ['consent'], at(20), policy)).toThrow(/not a participant/);
  });
});
