// Retention policies, legal holds, grounds, backups, kept-by-law purges, sweeps and shutdown notices
// as pure rules (policy 2.4.2(5), 4.1, 4.2, 5.1, 5.2).
import { DATA_CATEGORY_IDS } from '@pipp/contracts';
import { describe, expect, it } from 'vitest';
import { mayHold, suppressedUntil, toReapply, type BackupGeneration, type Suppression } from '../src/domain/backups.js';
import { groundAdmissible } from '../src/domain/grounds.js';
import { legalHoldsFor, type SubjectHold } from '../src/domain/holds.js';
import { planPurges } from '../src/domain/kept.js';
import { DEFAULT_POLICIES, effectiveRule, parsePolicyId, policyId, policyProblems, sweepRules } from '../src/domain/policies.js';
import { noticeAudiences, shutdownNotice, shutdownScope } from '../src/domain/shutdown.js';
import type { Catalogue, CatalogueFunction } from '@pipp/consent-client';
import type { DataCategory } from '@pipp/contracts';
import { applySweepReply, planSweep, startSweep, sweepStatus, sweepTotals } from '../src/domain/sweeps.js';

const now = new Date('2026-03-01T00:00:00Z');
const days = (n: number) => new Date(now.getTime() + n * 86_400_000);
const policy = { baseMs: 1000, maxMs: 4000, maxAutoAttempts: 2, escalateBeforeMs: 0 };

describe('retention policies', () => {
  it('seeds one valid policy per data category', () => {
    expect(DEFAULT_POLICIES.map((p) => p.category).sort()).toEqual([...DATA_CATEGORY_IDS].sort());
    for (const p of DEFAULT_POLICIES) expect(policyProblems(p), p.category).toEqual([]);
  });

  it('requires the law cited for 5.2.3, allows keeping on erasure only under a law, and overrides only for holders', () => {
    const base = DEFAULT_POLICIES.find((p) => p.category === 'activity-log')!;
    expect(policyProblems({ ...base, criterion: '5.2.3', lawCitation: ' ' }).map((x) => x.path)).toEqual(['/body/lawCitation']);
    expect(policyProblems({ ...base, keepOnErasure: true }).map((x) => x.path)).toEqual(['/body/keepOnErasure']);
    expect(policyProblems({ ...base, service: 'consent' }).map((x) => x.message)).toEqual(['consent does not hold activity-log']);
    expect(policyProblems({ ...base, service: 'identity' })).toEqual([]);
  });

  it('names policies by category and service, and refuses ids that name no category', () => {
    expect(policyId({ category: 'profile' })).toBe('profile');
    expect(policyId({ category: 'profile', service: 'identity' })).toBe('profile@identity');
    expect(parsePolicyId('profile@identity')).toEqual({ category: 'profile', service: 'identity' });
    expect(parsePolicyId('nonsense')).toBeNull();
    expect(parsePolicyId('profile@identity@x')).toBeNull();
  });

  it("gives each service its own override of a category's rule, the general rule elsewhere", () => {
    const rules = sweepRules([...DEFAULT_POLICIES, { ...DEFAULT_POLICIES.find((p) => p.category === 'phone-number')!, service: 'incident', periodDays: 0 }]);
    expect(effectiveRule(rules, 'incident', 'phone-number')).toMatchObject({ periodDays: 0, service: 'incident' });
    expect(effectiveRule(rules, 'identity', 'phone-number')).toMatchObject({ periodDays: 30 });
    expect(effectiveRule(rules, 'identity', 'phone-number')!.service).toBeUndefined();
  });
});

describe('legal holds', () => {
  const hold = (over: Partial<SubjectHold>): SubjectHold => ({ holdId: 'lh-1', categories: [], mode: 'isolate', legalBasis: 'law-enforcement', evidenceRef: 'case 2026-17', until: days(90), ...over });

  it('refuses an erasure a blocking hold covers, with a coded reason and the clause', () => {
    const r = legalHoldsFor({ kind: 'account' }, [hold({ mode: 'block' })], [], now);
    expect(r.refusal).toMatchObject({ code: 'PIPP_ERASURE_LEGAL_HOLD', clause: '4.1' });
    expect(r.refusal!.message).toMatch(/your account until 2026-05-30/);
    const partial = legalHoldsFor({ kind: 'categories', categories: ['profile', 'session'] }, [hold({ mode: 'block', categories: ['session'] })], [], now);
    expect(partial.refusal!.message).toMatch(/covers session/);
  });

  it('ignores expired holds and blocking holds on other categories', () => {
    expect(legalHoldsFor({ kind: 'account' }, [hold({ mode: 'block', until: days(-1) })], [], now).refusal).toBeUndefined();
    expect(legalHoldsFor({ kind: 'categories', categories: ['profile'] }, [hold({ mode: 'block', categories: ['session'] })], [], now).refusal).toBeUndefined();
  });

  it('turns isolating holds and statutory policies into holds participants keep isolated until their purge date', () => {
    const r = legalHoldsFor({ kind: 'account' }, [hold({ categories: ['activity-log'] })], DEFAULT_POLICIES, now);
    expect(r.refusal).toBeUndefined();
    expect(r.holds).toEqual([
      { category: 'activity-log', legalBasis: 'law-enforcement', evidenceRef: 'case 2026-17', purgeAt: days(90) },
      { category: 'transaction-record', legalBasis: 'legal-obligation', evidenceRef: expect.stringMatching(/E-Commerce Law/), purgeAt: days(1095) },
    ]);
    expect(legalHoldsFor({ kind: 'categories', categories: ['profile'] }, [], DEFAULT_POLICIES, now).holds).toEqual([]);
  });

  it('keeps the later purge date when a hold and a law both apply', () => {
    const r = legalHoldsFor({ kind: 'categories', categories: ['transaction-record'] }, [hold({ until: days(2000) })], DEFAULT_POLICIES, now);
    expect(r.holds).toEqual([expect.objectContaining({ category: 'transaction-record', legalBasis: 'law-enforcement', purgeAt: days(2000) })]);
  });
});

describe('grounds', () => {
  it('lets each origin invoke only its grounds', () => {
    expect(groundAdmissible('subject', '4.2.2')).toBe(true);
    expect(groundAdmissible('subject', '5.1')).toBe(false);
    expect(groundAdmissible('subject', '2.4.2(5)')).toBe(false);
    expect(groundAdmissible('operator', '5.1')).toBe(true);
    expect(groundAdmissible('expiry-sweep', '4.2.5')).toBe(true);
    expect(groundAdmissible('business-shutdown', '4.1')).toBe(false);
  });
});

describe('backups and the suppression list', () => {
  const gen = (id: string, taken: number, expires: number): BackupGeneration => ({ generationId: id, service: 'identity', takenAt: days(taken), expiresAt: days(expires) });
  const erased = (completed: number | null): Suppression => ({ requestId: 'er-1', subjectId: 's-1', requestedAt: days(-1), completedAt: completed === null ? null : days(completed) });

  it('knows which generations may hold an erased subject', () => {
    expect(mayHold(gen('old', -10, 20), erased(0))).toBe(true);
    expect(mayHold(gen('new', 1, 31), erased(0))).toBe(false);
    expect(mayHold(gen('new', 1, 31), erased(null))).toBe(true);
  });

  it('keeps a subject suppressed until the last backup that may hold them expires', () => {
    expect(suppressedUntil(erased(0), [gen('a', -10, 20), gen('b', -5, 25), gen('c', 1, 40)], now)).toEqual(days(25));
    expect(suppressedUntil(erased(0), [gen('a', -40, -10)], now)).toBeNull();
    expect(suppressedUntil(erased(null), [], now)).toBe('open');
  });

  it('re-applies on restore exactly the erasures the generation may predate', () => {
    const list = [{ ...erased(0), requestId: 'before' }, { ...erased(-20), requestId: 'long-ago' }, { ...erased(null), requestId: 'running' }];
    expect(toReapply(gen('g', -10, 20), list).map((s) => s.requestId)).toEqual(['before', 'running']);
  });
});

describe('kept-by-law purges', () => {
  it('groups due records per subject, leaves future ones and retention\'s own ledger alone', () => {
    const plans = planPurges([
      { keptId: 'k1', subjectId: 's-1', participant: 'identity', category: 'device-info', purgeAt: days(-1) },
      { keptId: 'k2', subjectId: 's-1', participant: 'data-sharing', category: 'transaction-record', purgeAt: days(0) },
      { keptId: 'k3', subjectId: 's-1', participant: 'identity', category: 'session', purgeAt: days(1) },
      { keptId: 'k4', subjectId: 's-2', participant: 'retention', category: 'erasure-request', purgeAt: days(-1) },
    ], now);
    expect(plans).toEqual([{ subjectId: 's-1', participants: ['data-sharing', 'identity'], categories: ['device-info', 'transaction-record'], keptIds: ['k1', 'k2'] }]);
  });
});

describe('sweeps', () => {
  it('tracks progress per participant, replaces running totals, completes when all completed', () => {
    let p = startSweep(['identity', 'retention'], now, policy);
    p = applySweepReply(p, { sweepId: 'sw', participant: 'identity', status: 'in-progress', counts: { erased: 5, anonymized: 0, kept: 0 }, batches: 1 }, now, policy)!;
    p = applySweepReply(p, { sweepId: 'sw', participant: 'identity', status: 'in-progress', counts: { erased: 9, anonymized: 1, kept: 0 }, batches: 2 }, now, policy)!;
    expect(applySweepReply(p, { sweepId: 'sw', participant: 'identity', status: 'in-progress', counts: { erased: 5, anonymized: 0, kept: 0 }, batches: 1 }, now, policy)).toBeNull();
    expect(sweepStatus(p)).toBe('running');
    p = applySweepReply(p, { sweepId: 'sw', participant: 'identity', status: 'completed', counts: { erased: 9, anonymized: 1, kept: 0 }, batches: 2 }, now, policy)!;
    p = applySweepReply(p, { sweepId: 'sw', participant: 'retention', status: 'completed', counts: { erased: 1, anonymized: 0, kept: 0 }, batches: 1 }, now, policy)!;
    expect(sweepStatus(p)).toBe('completed');
    expect(sweepTotals(p)).toEqual({ erased: 10, anonymized: 1, kept: 0, batches: 3 });
  });

  it('redelivers to a silent participant, then gives up and reports the sweep failed', () => {
    let p = startSweep(['identity'], now, policy);
    let t: number;
    for (let i = 0; i < 2; i += 1) {
      t = p.identity!.nextRetryAt!.getTime();
      const plan = planSweep(p, new Date(t), policy);
      expect(plan.redeliver).toEqual(['identity']);
      p = plan.participants;
    }
    const last = planSweep(p, p.identity!.nextRetryAt!, policy);
    expect(last.redeliver).toEqual([]);
    expect(sweepStatus(last.participants)).toBe('failed');
  });
});

describe('shutdown notices', () => {
  it('notifies known subjects one by one in requests of at most 1000, everyone otherwise', () => {
    expect(noticeAudiences(undefined)).toEqual([{ allSubjects: true }]);
    const ids = Array.from({ length: 2500 }, (_, i) => `s-${i}`);
    expect(noticeAudiences(ids).map((a) => ('subjectIds' in a ? a.subjectIds.length : 0))).toEqual([1000, 1000, 500]);
  });

  it('says what stops, when, and what happens to the data', () => {
    const n = shutdownNotice({ title: 'Photo prints', effectiveAt: now, action: 'anonymize', categories: ['transaction-record'] });
    expect(n.body).toMatch(/Photo prints stops operating on 2026-03-01/);
    expect(n.body).toMatch(/stopped collecting/);
    expect(n.body).toMatch(/anonymized/);
    const kept = shutdownNotice({ title: 'Optional profile', effectiveAt: now, action: 'erase', categories: ['profile'], kept: ['credentials'] });
    expect(kept.body).toMatch(/\(profile\) will be deleted\. What other services still use \(credentials\) stays for them/);
    expect(shutdownNotice({ title: 'x', effectiveAt: now, action: 'erase', categories: [], kept: ['credentials'] }).dataHandling).toMatch(/^None of the personal information we hold is only for it/);
  });
});

describe('shutdown scope (2.4.2(5), 2.1)', () => {
  const fn = (id: string, purposes: string[], categories: DataCategory[], extra: Partial<CatalogueFunction> = {}): CatalogueFunction => ({ id, title: id, purposes, status: 'active', categories, shutDown: null, ...extra });
  const catalogue: Catalogue = {
    purposes: [{ id: 'account', requires: null }, { id: 'profile', requires: null }, { id: 'personalization', requires: null }, { id: 'sharing', requires: 'recipient' }],
    functions: [
      fn('profile', ['account', 'profile'], ['profile', 'credentials']),
      fn('sign-in', ['account'], ['phone-number', 'credentials']),
      fn('badges', ['profile'], ['profile']),
      fn('recommendations', ['personalization'], ['activity-log']),
      fn('sharing', ['sharing'], ['profile', 'activity-log', 'credentials']),
      fn('old-basic', ['account'], ['activity-log'], { status: 'retired' }),
      fn('closed', ['personalization'], ['activity-log'], { shutDown: { shutdownId: 'sd-1', effectiveAt: '2026-01-01T00:00:00.000Z' } }),
    ],
  };

  it('erases what no other function processes, keeps the rest naming the functions, and defaults to all the function collects', () => {
    expect(shutdownScope({ functionId: 'recommendations' }, catalogue)).toEqual({ ok: true, categories: ['activity-log'], erasedCategories: ['activity-log'], keptCategories: [] });
    expect(shutdownScope({ functionId: 'profile' }, catalogue)).toEqual({
      ok: true, categories: ['profile', 'credentials'], erasedCategories: [], keptCategories: [{ category: 'profile', usedBy: ['badges'] }, { category: 'credentials', usedBy: ['sign-in'] }],
    });
    // The optional profile still uses what a badges function collected (a breaker helper saw a notice promise its erasure).
    expect(shutdownScope({ functionId: 'badges' }, catalogue)).toMatchObject({ erasedCategories: [], keptCategories: [{ category: 'profile', usedBy: ['profile'] }] });
  });

  it('refuses a function the catalogue does not hold active, and categories it does not collect', () => {
    expect(shutdownScope({ functionId: 'made-up' }, catalogue)).toMatchObject({ ok: false, problem: 'unknown-function', message: expect.stringMatching(/no active function made-up/) });
    expect(shutdownScope({ functionId: 'old-basic' }, catalogue)).toMatchObject({ ok: false, problem: 'unknown-function' });
    expect(shutdownScope({ functionId: 'profile', categories: ['activity-log'] }, catalogue)).toMatchObject({ ok: false, problem: 'not-collected', message: expect.stringMatching(/profile does not collect activity-log/) });
    expect(shutdownScope({ functionId: 'closed' }, catalogue)).toMatchObject({ ok: true });
  });

  it('keeps nothing for a function already shut down that the catalogue still shows open', () => {
    expect(shutdownScope({ functionId: 'profile', categories: ['profile'] }, catalogue, new Set(['badges']))).toMatchObject({ erasedCategories: ['profile'], keptCategories: [] });
  });
});
