import { CHANNELS, type Channel } from '@pipp/contracts';
import type { NotificationKind } from './notice.js';

/**
 * Default order in which channels are tried when the subject stated no preference: e-mail, push,
 * SMS, telephone, then a letter as the channel of last resort (policy 5.4.2 names mail, letter,
 * telephone and push).
 */
export const DEFAULT_CHANNEL_ORDER: readonly Channel[] = ['email', 'push', 'sms', 'telephone', 'letter'];

/**
 * The channels to try for one subject, in order: the subject's preferred channels first (as identity
 * reported them), then the default order; only channels the subject has an address for, and only
 * those the notice allows (`requested`; all when absent). Empty: the subject is unreachable one by
 * one, which leads to an announcement (policy 5.4.2).
 */
export function planChannels(available: readonly Channel[], requested?: readonly Channel[], preferred: readonly Channel[] = []): Channel[] {
  const allowed = (c: Channel) => available.includes(c) && (!requested || requested.includes(c));
  const order = [...preferred.filter((c) => CHANNELS.includes(c)), ...DEFAULT_CHANNEL_ORDER];
  return [...new Set(order)].filter(allowed);
}

/** Retry settings of a delivery (config DELIVERY_MAX_ATTEMPTS, DELIVERY_RETRY_BASE_MS, DELIVERY_RETRY_MAX_MS). */
export interface RetryPolicy {
  /** Attempts per channel before falling back to the next one (≥ 1). */
  maxAttemptsPerChannel: number;
  /** First retry delay (ms); doubled per attempt, capped at `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Where a delivery stands: its channel plan, the channel in use and the attempts made on it. */
export interface DeliveryPosition {
  plan: readonly Channel[];
  channelIndex: number;
  attemptsOnChannel: number;
}

/** What to do after a failed attempt. */
export type NextStep =
  | { action: 'retry'; channel: Channel; channelIndex: number; attemptsOnChannel: number; delayMs: number }
  | { action: 'fallback'; channel: Channel; channelIndex: number; attemptsOnChannel: 0; delayMs: 0 }
  | { action: 'give-up' };

/**
 * After a failed attempt (already counted in `position.attemptsOnChannel`): retry the same channel
 * with exponential backoff while attempts remain and the failure may pass; otherwise fall back to the
 * next channel of the plan at once; give up when the plan is exhausted (policy 5.4.2: the subject
 * then counts as unreachable, and an announcement covers them).
 */
export function nextStep(position: DeliveryPosition, failure: { permanent: boolean }, policy: RetryPolicy): NextStep {
  const channel = position.plan[position.channelIndex];
  if (channel && !failure.permanent && position.attemptsOnChannel < policy.maxAttemptsPerChannel) {
    const delayMs = Math.min(policy.baseDelayMs * 2 ** (position.attemptsOnChannel - 1), policy.maxDelayMs);
    return { action: 'retry', channel, channelIndex: position.channelIndex, attemptsOnChannel: position.attemptsOnChannel, delayMs };
  }
  const nextIndex = position.channelIndex + 1;
  const next = position.plan[nextIndex];
  if (next) return { action: 'fallback', channel: next, channelIndex: nextIndex, attemptsOnChannel: 0, delayMs: 0 };
  return { action: 'give-up' };
}

/** Kinds for which subjects who cannot be reached one by one are informed by a public announcement. */
export const ANNOUNCEABLE_KINDS: readonly NotificationKind[] = ['security-incident', 'policy-update', 'business-shutdown', 'general'];

/**
 * Whether a notice may be published as an announcement: its kind is announceable, and a `general`
 * notice only when it is for every subject. A general notice to listed people (a DPO's escalation, a
 * message to a few subjects) is theirs alone: published, it showed internal ids and routes to anyone.
 */
function publishable(kind: NotificationKind, allSubjects: boolean): boolean {
  return ANNOUNCEABLE_KINDS.includes(kind) && (kind !== 'general' || allSubjects);
}

export type AnnouncementReason = 'above-threshold' | 'unreachable-subjects' | 'all-subjects' | 'operator';

/**
 * How a notice reaches its audience (policy 5.4.2: "when it is difficult to inform the subject one by
 * one, we will … issue the announcement"; 2.4.2(5) "one by one or announcement"):
 * - more subjects than `threshold`: an announcement instead of one-by-one notices;
 * - a notice to every subject of an announceable kind (policy update, shutdown): one by one and also
 *   an announcement, so that people without a reachable channel learn of it too;
 * - otherwise one by one; those found unreachable later get an announcement (`announceUnreachable`).
 * An empty audience sends nothing (the caller refuses it).
 */
export function decideReach(input: { kind: NotificationKind; allSubjects: boolean; audienceSize: number; threshold: number }):
  { oneByOne: boolean; announce: boolean; reason?: AnnouncementReason } {
  const announceable = publishable(input.kind, input.allSubjects);
  if (input.audienceSize > input.threshold && announceable) return { oneByOne: false, announce: true, reason: 'above-threshold' };
  if (input.allSubjects && announceable) return { oneByOne: input.audienceSize > 0, announce: true, reason: 'all-subjects' };
  return { oneByOne: input.audienceSize > 0, announce: false };
}

/** After one-by-one delivery: subjects left unreached call for an announcement (publishable notices only). */
export function announceUnreachable(kind: NotificationKind, allSubjects: boolean, unreached: number, alreadyAnnounced: boolean): boolean {
  return unreached > 0 && !alreadyAnnounced && publishable(kind, allSubjects);
}

/**
 * How many channels a notice goes out on: `first-channel` stops at the first channel that accepts it
 * (the others are fallbacks); `every-channel` sends it on each available channel (each retried, a
 * failed one skipped), so a grave incident reaches the subject however they look.
 */
export type DeliveryMode = 'first-channel' | 'every-channel';
export const DELIVERY_MODES: readonly DeliveryMode[] = ['first-channel', 'every-channel'];

/** The default mode: every channel for high and critical security incidents, the first one otherwise. */
export function defaultMode(kind: NotificationKind, severity?: string): DeliveryMode {
  return kind === 'security-incident' && (severity === 'high' || severity === 'critical') ? 'every-channel' : 'first-channel';
}

/** After a channel accepted the notice: done, or (every-channel) on to the next channel of the plan. */
export function afterSuccess(position: Pick<DeliveryPosition, 'plan' | 'channelIndex'>, mode: DeliveryMode): { action: 'done' } | { action: 'next'; channelIndex: number } {
  if (mode === 'every-channel' && position.channelIndex + 1 < position.plan.length) return { action: 'next', channelIndex: position.channelIndex + 1 };
  return { action: 'done' };
}
