// The incident service's privacy rules as pure functions: what a notice must carry (5.4.2, VI,
// 2.4.2(5)), channel plans, retries and fallback, one-by-one vs announcement, report and incident
// lifecycles, and the erasure plan.
import { describe, expect, it } from 'vitest';
import { chunkNewSubjects } from '../src/domain/audience.js';
import { afterSuccess, announceUnreachable, decideReach, defaultMode, nextStep, planChannels } from '../src/domain/delivery.js';
import { pushEndpointProblem } from '../src/domain/endpoint.js';
import { planErasure, pseudonymOf } from '../src/domain/erasure.js';
import { canMoveIncident, changedFields, incidentElements, incidentTimesProblem } from '../src/domain/incidents.js';
import { IncompleteNoticeError, assertRenderedComplete, missingElements, renderNotice, type Notice } from '../src/domain/notice.js';
import { canTransition, statusAfterReply } from '../src/domain/reports.js';

const incidentNotice = (): Notice => ({
  kind: 'security-incident',
  title: 'Unauthorized access to the order database',
  body: 'We are writing to tell you about a security incident.',
  elements: incidentElements({
    basicSituation: 'On 2026-11-20 an attacker used a leaked staff credential to read order records.',
    categories: ['phone-number', 'contact-channel'],
    categoryTitles: { 'phone-number': 'Mobile phone number', 'contact-channel': 'Contact channels' },
    possibleImpact: 'You may receive phishing messages that quote your orders.',
    measuresTaken: ['Revoked the credential', 'Rotated database keys'],
    measuresPlanned: ['Hardware keys for all staff'],
    advice: 'Do not share one-time codes; be wary of calls quoting your orders.',
    remedies: 'Free identity monitoring for one year; compensation claims via support.',
  }),
  contact: 'Help → Contact us',
});

describe('notice elements (5.4.2, VI, 2.4.2(5))', () => {
  it('requires every element of a security incident notice and names what is missing', () => {
    expect(missingElements('security-incident', incidentNotice().elements)).toEqual([]);
    const { advice: _a, remedies: _r, ...rest } = incidentNotice().elements;
    expect(missingElements('security-incident', { ...rest, possibleImpact: '   ' })).toEqual(['possibleImpact', 'advice', 'remedies']);
    expect(missingElements('policy-update', {})).toEqual(['changes']);
    expect(missingElements('business-shutdown', { effectiveAt: '2027-01-01' })).toEqual(['dataHandling']);
    expect(missingElements('new-device-sign-in', {})).toEqual([]);
  });

  it('puts every element and the contact line into the text of every channel', () => {
    const notice = incidentNotice();
    for (const channel of ['email', 'sms', 'telephone', 'push', 'letter'] as const) {
      const r = renderNotice(notice, channel);
      for (const v of [...Object.values(notice.elements), notice.contact]) {
        expect(r.text.replace(/\s+/g, ' '), `${channel}`).toContain(v.replace(/\s+/g, ' ').trim());
      }
      expect(r.sections.map((s) => s.name)).toEqual(['basicSituation', 'categories', 'possibleImpact', 'measures', 'advice', 'remedies', 'contact']);
    }
    expect(renderNotice(notice, 'email').text).toContain('What you can do to prevent or reduce the risk:');
  });

  it('labels an element named like an Object.prototype member by its own name, not the function (found by fuzzing)', () => {
    const notice: Notice = { ...incidentNotice(), kind: 'general', elements: { toString: 'q', constructor: 'r' } };
    const r = renderNotice(notice, 'sms');
    expect(r.text).not.toContain('native code');
    expect(r.sections.map((x) => x.label)).toEqual(['constructor', 'toString', expect.any(String)]);
  });

  it('refuses to render an incomplete notice or one without a contact line', () => {
    const notice = incidentNotice();
    expect(() => renderNotice({ ...notice, elements: { ...notice.elements, remedies: '' } }, 'email')).toThrow(IncompleteNoticeError);
    expect(() => renderNotice({ ...notice, contact: ' ' }, 'sms')).toThrow(/contact/);
  });

  it('catches a rendered text that dropped an element', () => {
    const notice = incidentNotice();
    const text = renderNotice(notice, 'email').text.replace(notice.elements.advice!, '');
    expect(() => assertRenderedComplete(notice, { text })).toThrow(/advice/);
  });

  it('keeps the subject line on one line (no header injection)', () => {
    const r = renderNotice({ ...incidentNotice(), title: 'Notice\r\nBcc: victim@example.com' }, 'email');
    expect(r.subject).not.toMatch(/[\r\n]/);
  });

  it('lists measures taken and planned under one element', () => {
    const m = incidentNotice().elements.measures!;
    expect(m).toContain('Taken:\n- Revoked the credential');
    expect(m).toContain('Planned:\n- Hardware keys for all staff');
    expect(incidentElements({ basicSituation: 'x', categories: [], possibleImpact: 'x', measuresTaken: [], measuresPlanned: [], advice: 'x', remedies: 'x' }).measures).toBe('');
  });
});

describe('channel plans, retries and fallback', () => {
  it('orders channels by the subject\'s preference, then the default order, limited to what is available and allowed', () => {
    expect(planChannels(['sms', 'email', 'letter'])).toEqual(['email', 'sms', 'letter']);
    expect(planChannels(['sms', 'email', 'letter'], undefined, ['letter'])).toEqual(['letter', 'email', 'sms']);
    expect(planChannels(['sms', 'email'], ['sms', 'push'])).toEqual(['sms']);
    expect(planChannels([], undefined, ['email'])).toEqual([]);
  });

  const policy = { maxAttemptsPerChannel: 3, baseDelayMs: 100, maxDelayMs: 250 };
  it('retries a transient failure with exponential backoff, capped', () => {
    expect(nextStep({ plan: ['email', 'sms'], channelIndex: 0, attemptsOnChannel: 1 }, { permanent: false }, policy)).toMatchObject({ action: 'retry', channel: 'email', delayMs: 100 });
    expect(nextStep({ plan: ['email', 'sms'], channelIndex: 0, attemptsOnChannel: 2 }, { permanent: false }, policy)).toMatchObject({ action: 'retry', delayMs: 200 });
    expect(nextStep({ plan: ['email'], channelIndex: 0, attemptsOnChannel: 2 }, { permanent: false }, { ...policy, maxDelayMs: 150 })).toMatchObject({ delayMs: 150 });
  });

  it('falls back to the next channel when attempts run out or the failure is permanent, and gives up at the end', () => {
    expect(nextStep({ plan: ['email', 'sms'], channelIndex: 0, attemptsOnChannel: 3 }, { permanent: false }, policy)).toEqual({ action: 'fallback', channel: 'sms', channelIndex: 1, attemptsOnChannel: 0, delayMs: 0 });
    expect(nextStep({ plan: ['push', 'letter'], channelIndex: 0, attemptsOnChannel: 1 }, { permanent: true }, policy)).toMatchObject({ action: 'fallback', channel: 'letter' });
    expect(nextStep({ plan: ['push', 'letter'], channelIndex: 1, attemptsOnChannel: 3 }, { permanent: false }, policy)).toEqual({ action: 'give-up' });
  });
});

describe('one by one or announcement (5.4.2, 2.4.2(5))', () => {
  it('announces instead of notifying one by one above the threshold', () => {
    expect(decideReach({ kind: 'security-incident', allSubjects: false, audienceSize: 11, threshold: 10 })).toEqual({ oneByOne: false, announce: true, reason: 'above-threshold' });
    expect(decideReach({ kind: 'security-incident', allSubjects: false, audienceSize: 10, threshold: 10 })).toEqual({ oneByOne: true, announce: false });
  });

  it('also announces notices to everyone, and never announces personal notices', () => {
    expect(decideReach({ kind: 'policy-update', allSubjects: true, audienceSize: 3, threshold: 10 })).toEqual({ oneByOne: true, announce: true, reason: 'all-subjects' });
    expect(decideReach({ kind: 'new-device-sign-in', allSubjects: false, audienceSize: 50, threshold: 10 })).toEqual({ oneByOne: true, announce: false });
    expect(announceUnreachable('security-incident', false, 1, false)).toBe(true);
    expect(announceUnreachable('security-incident', false, 1, true)).toBe(false);
    // A general notice to listed people is theirs alone: never published (a DPO's escalation was).
    expect(announceUnreachable('general', false, 1, false)).toBe(false);
    expect(announceUnreachable('general', true, 1, false)).toBe(true);
    expect(decideReach({ kind: 'general', allSubjects: false, audienceSize: 11, threshold: 10 })).toEqual({ oneByOne: true, announce: false });
    expect(announceUnreachable('account-leak', false, 1, false)).toBe(false);
    expect(announceUnreachable('security-incident', false, 0, false)).toBe(false);
  });
});

describe('lifecycles', () => {
  it('moves incidents forward only and freezes closed ones', () => {
    expect(canMoveIncident('open', 'contained')).toBe(true);
    expect(canMoveIncident('resolved', 'open')).toBe(false);
    expect(canMoveIncident('closed', 'closed')).toBe(false);
  });

  it('accepts incident times from 1970 to a few minutes ahead, occurrence before discovery', () => {
    const now = Date.UTC(2026, 10, 30);
    expect(incidentTimesProblem({ occurredAt: now - 86_400_000, discoveredAt: now }, now)).toBeNull();
    expect(incidentTimesProblem({ discoveredAt: now + 60_000 }, now)).toBeNull(); // a clock a minute fast
    expect(incidentTimesProblem({ discoveredAt: now + 3600_000 }, now)).toMatchObject({ field: 'discoveredAt' });
    expect(incidentTimesProblem({ occurredAt: Date.UTC(1969, 11, 31), discoveredAt: now }, now)).toMatchObject({ field: 'occurredAt' });
    expect(incidentTimesProblem({ occurredAt: now, discoveredAt: now - 1 }, now)).toMatchObject({ field: 'occurredAt', message: expect.stringMatching(/after discoveredAt/) });
  });

  it('lists only the fields a patch really changes', () => {
    expect(changedFields({ title: 'a', measuresTaken: ['x'] }, { title: 'a', measuresTaken: ['x', 'y'], advice: undefined })).toEqual(['measuresTaken']);
  });

  it('lets a subject reopen a resolved report by replying, and refuses replies to closed ones', () => {
    expect(statusAfterReply('resolved', 'subject')).toBe('in-progress');
    expect(statusAfterReply('open', 'support')).toBe('in-progress');
    expect(statusAfterReply('closed', 'subject')).toBe('refused');
    expect(canTransition('closed', 'open')).toBe(false);
    expect(canTransition('open', 'resolved')).toBe(true);
  });
});

describe('erasure plan (4.1, 4.2; PIPL art. 47, 57)', () => {
  const now = new Date('2026-11-29T00:00:00Z');
  it('erases contacts, anonymizes reports and keeps only pseudonymous incident records for an account erasure', () => {
    const plan = planErasure({ scope: { kind: 'account' }, legalHolds: [], now, incidentRecordDays: 10 });
    expect(plan.map((p) => `${p.holding}:${p.action}`)).toEqual(['contacts:erase', 'reports:anonymize', 'deliveries:erase', 'deliveries:pseudonymize-keep']);
    expect(plan[0]!.channels).toBe('all');
    expect(plan[3]).toMatchObject({ legalBasis: 'legal-obligation', purgeAt: new Date('2026-12-09T00:00:00Z') });
  });

  it('limits itself to the categories in scope and isolates what a legal hold covers', () => {
    const plan = planErasure({
      scope: { kind: 'categories', categories: ['support-report', 'contact-channel'] },
      legalHolds: [{ category: 'support-report', legalBasis: 'law-enforcement', purgeAt: '2027-01-01T00:00:00.000Z' }], now, incidentRecordDays: 10,
    });
    expect(plan.map((p) => `${p.holding}:${p.action}`)).toEqual(['contacts:erase', 'reports:isolate']);
    expect(plan[0]!.channels).toEqual(['email', 'push', 'letter']);
    expect(plan[1]).toMatchObject({ legalBasis: 'law-enforcement' });
  });

  it('isolates held contact channels per category before erasing the rest', () => {
    const hold = { legalBasis: 'law-enforcement' as const, purgeAt: '2027-01-01T00:00:00.000Z' };
    const account = planErasure({ scope: { kind: 'account' }, legalHolds: [{ category: 'contact-channel', ...hold }], now, incidentRecordDays: 10 });
    expect(account.slice(0, 2)).toEqual([
      expect.objectContaining({ holding: 'contacts', action: 'isolate', category: 'contact-channel', channels: ['email', 'push', 'letter'], legalBasis: 'law-enforcement' }),
      expect.objectContaining({ holding: 'contacts', action: 'erase', channels: 'all' }),
    ]);
    const some = planErasure({ scope: { kind: 'categories', categories: ['contact-channel', 'phone-number'] }, legalHolds: [{ category: 'phone-number', ...hold }], now, incidentRecordDays: 10 });
    expect(some).toEqual([
      expect.objectContaining({ action: 'isolate', category: 'phone-number', channels: ['sms', 'telephone'] }),
      expect.objectContaining({ action: 'erase', channels: ['email', 'push', 'letter'] }),
    ]);
  });

  it('derives a stable pseudonym that depends on the key and does not contain the id', () => {
    const a = pseudonymOf('sub-1', 'k'.repeat(32));
    expect(a).toBe(pseudonymOf('sub-1', 'k'.repeat(32)));
    expect(a).not.toBe(pseudonymOf('sub-1', 'j'.repeat(32)));
    expect(a).not.toContain('sub-1');
    expect(a).toMatch(/^ps_[A-Za-z0-9_-]{27}$/);
  });
});

describe('affected-subject chunks', () => {
  it('fills the last chunk, then opens new ones, dropping ids already known and duplicates', () => {
    const r = chunkNewSubjects(['a', 'b', 'b', 'c', 'd', 'e', 'f'], new Set(['a']), 3, 4);
    expect(r.fresh).toEqual(['b', 'c', 'd', 'e', 'f']);
    expect(r.intoLast).toEqual(['b']);
    expect(r.newChunks).toEqual([['c', 'd', 'e', 'f']]);
    expect(chunkNewSubjects(['x', 'y', 'z'], new Set(), 0, 2)).toEqual({ fresh: ['x', 'y', 'z'], intoLast: [], newChunks: [['x', 'y'], ['z']] });
    expect(chunkNewSubjects(['x'], new Set(), 2, 2).newChunks).toEqual([['x']]);
  });
});

describe('push endpoints (SSRF guard)', () => {
  it('allows only https to public hosts in production', () => {
    expect(pushEndpointProblem('https://push.example.com/d/1', true)).toBeNull();
    for (const bad of ['http://push.example.com/d', 'https://127.0.0.1/x', 'https://10.1.2.3/', 'https://172.20.0.1/', 'https://192.168.1.1/', 'https://169.254.169.254/latest', 'https://[::1]/', 'https://[fd00::1]/', 'https://localhost/', 'https://db.internal/', 'https://u:p@push.example.com/', 'ftp://x.example.com/', 'not a url']) {
      expect(pushEndpointProblem(bad, true), bad).not.toBeNull();
    }
  });

  it('allows loopback http outside production (development, tests)', () => {
    expect(pushEndpointProblem('http://127.0.0.1:8080/push', false)).toBeNull();
    expect(pushEndpointProblem('file:///etc/passwd', false)).not.toBeNull();
  });
});

describe('delivery modes', () => {
  it('goes on to the next channel after a success only in every-channel mode', () => {
    expect(afterSuccess({ plan: ['email', 'sms'], channelIndex: 0 }, 'every-channel')).toEqual({ action: 'next', channelIndex: 1 });
    expect(afterSuccess({ plan: ['email', 'sms'], channelIndex: 1 }, 'every-channel')).toEqual({ action: 'done' });
    expect(afterSuccess({ plan: ['email', 'sms'], channelIndex: 0 }, 'first-channel')).toEqual({ action: 'done' });
  });

  it('uses every channel for high and critical security incidents by default', () => {
    expect(defaultMode('security-incident', 'critical')).toBe('every-channel');
    expect(defaultMode('security-incident', 'high')).toBe('every-channel');
    expect(defaultMode('security-incident', 'medium')).toBe('first-channel');
    expect(defaultMode('policy-update')).toBe('first-channel');
  });
});
