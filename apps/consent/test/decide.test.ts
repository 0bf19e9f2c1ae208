// The decision rules, as pure functions: each policy rule allows what it should and denies what it
// should, and every decision names its clause.
import { CLAUSE_IDS, DATA_CATEGORY_IDS, LEGAL_BASES, LEGAL_BASIS_IDS, type DecisionRequest, type LegalBasis } from '@pipp/contracts';
import { beforeEach, describe, expect, it } from 'vitest';
import { SEED_CATALOGUE, type Purpose } from '../src/domain/catalogue.js';
import { allStopped, decide } from '../src/domain/decide.js';
import { Projection, type LedgerFact } from '../src/domain/projection.js';
import type { PolicyVersionView } from '../src/domain/policy.js';
import { scopeKey, type ConsentScope } from '../src/domain/scope.js';

const DAY = 24 * 3600 * 1000;
const T0 = Date.parse('2026-01-01T00:00:00Z');
const NOW = T0 + 30 * DAY;

const version = (v: Partial<PolicyVersionView> & { version: number }): PolicyVersionView => ({
  documentId: 'general', appliesTo: { general: true }, restrictsRights: false, affectedPurposes: [], summary: `v${v.version}`, changes: [],
  terms: null, effectiveAt: T0, noticeEndsAt: T0, ...v,
});

let p: Projection;
let versions: PolicyVersionView[];
let seq = 0;
const S = 'subj-1';

function grant(purpose: string, scope?: ConsentScope, opts: Partial<LedgerFact> = {}) {
  const cat = SEED_CATALOGUE.purposes.find((x) => x.id === purpose);
  p.apply({
    _id: `r${++seq}`, subjectId: S, seq, kind: 'purpose', scopeKey: scopeKey(purpose, scope), state: 'granted', consentType: 'express',
    categories: scope?.category ? [scope.category] : cat?.categories ?? [], policyVersion: 1, at: new Date(T0 + seq), ...opts,
  });
  return `r${seq}`;
}
function withdraw(purpose: string, scope?: ConsentScope) {
  p.apply({ _id: `r${++seq}`, subjectId: S, seq, kind: 'purpose', scopeKey: scopeKey(purpose, scope), state: 'withdrawn', consentType: 'express', categories: [], policyVersion: 1, at: new Date(T0 + seq) });
}
function accept(documentId: string, v: number, express = true) {
  p.apply({ _id: `r${++seq}`, subjectId: S, seq, kind: 'policy', document: { documentId, version: v }, state: 'granted', consentType: express ? 'express' : 'implied', categories: [], policyVersion: v, at: new Date(T0 + seq) });
}
function ask(req: Partial<DecisionRequest> & Pick<DecisionRequest, 'purpose' | 'categories'>, now = NOW) {
  return decide({ subjectId: S, service: 'identity', ...req }, p.context(now), p.subject(S));
}
const d = (req: Parameters<typeof ask>[0], now?: number) => ask(req, now).decision;

beforeEach(() => {
  p = new Projection('CN');
  p.setCatalogue(SEED_CATALOGUE.purposes, SEED_CATALOGUE.functions);
  versions = [version({ version: 1 })];
  p.setPolicies(versions);
  seq = 0;
  accept('general', 1);
  grant('account');
  grant('notifications');
});

describe('basic and additional functions (2.1.1, 2.1.2)', () => {
  it('allows a basic function on the consent given at registration', () => {
    expect(d({ purpose: 'account', categories: ['phone-number'], functionId: 'registration' })).toMatchObject({ allowed: true, clause: '2.1.1', basis: { kind: 'consent', consentRecordId: 'r2' } });
  });

  it('denies an additional function never agreed to, and refusing it leaves the basic ones working', () => {
    const refused = d({ purpose: 'personalization', categories: ['activity-log'], functionId: 'personalization' });
    expect(refused).toMatchObject({ allowed: false, clause: '2.1.2', basis: null });
    expect(refused.reason).toMatch(/optional: refusing it never affects the basic functions/);
    grant('personalization');
    withdraw('personalization');
    expect(d({ purpose: 'personalization', categories: ['activity-log'] })).toMatchObject({ allowed: false, clause: '2.1.2' });
    expect(d({ purpose: 'personalization', categories: ['activity-log'] }).reason).toMatch(/withdrawn on/);
    for (const functionId of ['registration', 'sign-in', 'account-settings']) {
      expect(d({ purpose: 'account', categories: ['phone-number'], functionId })).toMatchObject({ allowed: true });
    }
  });

  it('refusing what a basic function needs blocks only that function, saying which data it needs and why', () => {
    withdraw('notifications');
    const blocked = d({ purpose: 'notifications', categories: ['contact-channel'], functionId: 'notifications' });
    expect(blocked).toMatchObject({ allowed: false, clause: '2.1.1' });
    expect(blocked.reason).toMatch(/The Notices function needs your contact channels: e-mail, push endpoint, postal address, mobile phone number, notices sent to the subject and their delivery because notices reach you/);
    expect(blocked.reason).toMatch(/only this function is unavailable/);
    expect(d({ purpose: 'account', categories: ['phone-number', 'credentials'], functionId: 'sign-in' })).toMatchObject({ allowed: true });
    expect(d({ purpose: 'security', categories: ['device-info'], functionId: 'risk-control' })).toMatchObject({ allowed: true });
  });

  it('denies a function for a purpose it does not serve, or data it does not need (2.4.2(2))', () => {
    expect(d({ purpose: 'account', categories: ['phone-number'], functionId: 'personalization' })).toMatchObject({ allowed: false, clause: '2.4.2(2)' });
    expect(d({ purpose: 'account', categories: ['contact-channel'], functionId: 'registration' })).toMatchObject({ allowed: false, clause: '2.4.2(2)' });
    expect(d({ purpose: 'account', categories: ['phone-number'], functionId: 'no-such-function' })).toMatchObject({ allowed: false, clause: '2.1' });
  });
});

describe('purposes (2.4.2(2))', () => {
  it('denies an unknown purpose and data outside the purpose', () => {
    expect(d({ purpose: 'marketing', categories: ['phone-number'] })).toMatchObject({ allowed: false, clause: '2.4.2(2)' });
    expect(d({ purpose: 'account', categories: ['activity-log'] })).toMatchObject({ allowed: false, clause: '2.4.2(2)' });
  });

  it('denies a new purpose (not specified in the policy) until the subject consents to it', () => {
    const research: Purpose = { ...SEED_CATALOGUE.purposes.find((x) => x.id === 'personalization')!, id: 'research', title: 'Product research', policyClause: null };
    p.setCatalogue([...SEED_CATALOGUE.purposes, research], SEED_CATALOGUE.functions);
    const before = d({ purpose: 'research', categories: ['activity-log'] });
    expect(before).toMatchObject({ allowed: false, clause: '2.4.2(2)' });
    expect(before.reason).toMatch(/never given.*did not specify, so it needs the subject's prior consent/);
    grant('research', undefined, { categories: ['activity-log'] });
    expect(d({ purpose: 'research', categories: ['activity-log'] })).toMatchObject({ allowed: true, clause: '2.4.2(2)', basis: { kind: 'consent' } });
  });

  it('a consent covers only the categories it was given for: a purpose widened since needs asking again', () => {
    grant('personalization', undefined, { categories: ['activity-log'] });
    const wider = SEED_CATALOGUE.purposes.map((x) => (x.id === 'personalization' ? { ...x, categories: [...x.categories, 'device-info' as const] } : x));
    p.setCatalogue(wider, SEED_CATALOGUE.functions);
    expect(d({ purpose: 'personalization', categories: ['activity-log'] })).toMatchObject({ allowed: true });
    expect(d({ purpose: 'personalization', categories: ['device-info'] })).toMatchObject({ allowed: false, clause: '2.4.2(2)' });
  });
});

describe('legal bases (2.4.2(4), 3.4)', () => {
  it('allows a claimed basis the purpose admits, with its evidence, and nothing else', () => {
    const ok = d({ purpose: 'account', categories: ['phone-number'], legalBasis: { legalBasis: 'legal-obligation', evidenceRef: 'Cybersecurity Law art. 24' } });
    expect(ok).toMatchObject({ allowed: true, clause: '2.4.2(4)i', basis: { kind: 'legal-basis', legalBasis: 'legal-obligation', evidenceRef: 'Cybersecurity Law art. 24' } });
    expect(d({ purpose: 'profile', categories: ['profile'], legalBasis: { legalBasis: 'legal-obligation', evidenceRef: 'x' } })).toMatchObject({ allowed: false, clause: '2.4.2(4)' });
  });

  it('uses a purpose\'s standing basis for internal processing (security, 2.4.1(3))', () => {
    expect(d({ purpose: 'security', categories: ['device-info', 'session'] })).toMatchObject({ allowed: true, clause: '2.4.2(4)ix', basis: { kind: 'legal-basis', legalBasis: 'service-security' } });
  });

  it('allows processing on each exception of 2.4.2(4) (i–x) a purpose admits, naming that exception and its evidence', () => {
    const exceptions = LEGAL_BASIS_IDS.filter((b): b is Exclude<LegalBasis, 'consent'> => b !== 'consent');
    expect(exceptions).toHaveLength(10);
    const admitsAll = SEED_CATALOGUE.purposes.map((x) => (x.id === 'account' ? { ...x, legalBases: [...LEGAL_BASIS_IDS] } : x));
    p.setCatalogue(admitsAll, SEED_CATALOGUE.functions);
    for (const legalBasis of exceptions) {
      expect(d({ purpose: 'account', categories: ['phone-number'], legalBasis: { legalBasis, evidenceRef: `evidence for ${legalBasis}` } }), legalBasis)
        .toMatchObject({ allowed: true, clause: LEGAL_BASES[legalBasis].clause, basis: { kind: 'legal-basis', legalBasis, evidenceRef: `evidence for ${legalBasis}` } });
    }
    // The seeded purpose admits only some of them: the others are refused.
    p.setCatalogue(SEED_CATALOGUE.purposes, SEED_CATALOGUE.functions);
    expect(d({ purpose: 'account', categories: ['phone-number'], legalBasis: { legalBasis: 'national-security', evidenceRef: 'x' } })).toMatchObject({ allowed: false, clause: '2.4.2(4)' });
  });

  it('shares, transfers or discloses without consent on each exception of 3.4 (3.4.1–3.4.7), naming it', () => {
    const sharingExceptions = LEGAL_BASIS_IDS.filter((b): b is Exclude<LegalBasis, 'consent'> => b !== 'consent' && LEGAL_BASES[b].sharingClause !== null);
    expect(sharingExceptions.map((b) => LEGAL_BASES[b].sharingClause)).toEqual(['3.4.1', '3.4.2', '3.4.3', '3.4.4', '3.4.5', '3.4.6', '3.4.7']);
    for (const legalBasis of sharingExceptions) {
      expect(d({ purpose: 'sharing', categories: ['transaction-record'], recipientId: 'authority', legalBasis: { legalBasis, evidenceRef: 'ref' } }), legalBasis)
        .toMatchObject({ allowed: true, clause: LEGAL_BASES[legalBasis].sharingClause, basis: { kind: 'legal-basis', legalBasis } });
    }
  });

  it('does not let a non-consent purpose be used on consent', () => {
    const noStanding = SEED_CATALOGUE.purposes.map((x) => (x.id === 'security' ? { ...x, standingBasis: null } : x));
    p.setCatalogue(noStanding, SEED_CATALOGUE.functions);
    expect(d({ purpose: 'security', categories: ['device-info'] })).toMatchObject({ allowed: false, clause: '2.4.2(4)' });
  });
});

describe('sharing, disclosure, sensitive data and cross-border transfer (3.1, 3.3, 3.4, PIPL 29, 5.3)', () => {
  it('needs a separate consent per recipient (3.1.2)', () => {
    expect(d({ purpose: 'sharing', categories: ['transaction-record'] })).toMatchObject({ allowed: false, clause: '3.1' });
    expect(d({ purpose: 'sharing', categories: ['transaction-record'], recipientId: 'acme' })).toMatchObject({ allowed: false, clause: '3.1.2' });
    const id = grant('sharing', { recipientId: 'acme' });
    expect(d({ purpose: 'sharing', categories: ['transaction-record'], recipientId: 'acme' })).toMatchObject({ allowed: true, clause: '3.1.2', basis: { consentRecordId: id } });
    expect(d({ purpose: 'sharing', categories: ['transaction-record'], recipientId: 'other' })).toMatchObject({ allowed: false, clause: '3.1.2' });
  });

  it('shares without consent only on a 3.4 exception, never on contract necessity or service security', () => {
    expect(d({ purpose: 'sharing', categories: ['transaction-record'], recipientId: 'court', legalBasis: { legalBasis: 'law-enforcement', evidenceRef: 'order 12' } }))
      .toMatchObject({ allowed: true, clause: '3.4.4' });
    expect(d({ purpose: 'sharing', categories: ['transaction-record'], recipientId: 'x', legalBasis: { legalBasis: 'legal-obligation', evidenceRef: 'tax law' } }))
      .toMatchObject({ allowed: true, clause: '3.4.1' });
    const cross = SEED_CATALOGUE.purposes.map((x) => (x.id === 'sharing' ? { ...x, legalBases: [...x.legalBases, 'contract-necessity' as const] } : x));
    p.setCatalogue(cross, SEED_CATALOGUE.functions);
    expect(d({ purpose: 'sharing', categories: ['transaction-record'], recipientId: 'x', legalBasis: { legalBasis: 'contract-necessity', evidenceRef: 'c-1' } }))
      .toMatchObject({ allowed: false, clause: '3.4' });
  });

  it('discloses publicly only with express consent to disclosure (3.3.1)', () => {
    expect(d({ purpose: 'public-disclosure', categories: ['profile'] })).toMatchObject({ allowed: false, clause: '3.3' });
    expect(d({ purpose: 'public-disclosure', categories: ['profile'], disclosure: true })).toMatchObject({ allowed: false, clause: '3.3.1' });
    grant('public-disclosure', { disclosure: true });
    expect(d({ purpose: 'public-disclosure', categories: ['profile'], disclosure: true })).toMatchObject({ allowed: true, clause: '3.3.1' });
  });

  it('needs a separate consent for each sensitive category (PIPL art. 29)', () => {
    grant('sharing', { recipientId: 'bank' });
    expect(d({ purpose: 'sharing', categories: ['financial-account'], recipientId: 'bank' })).toMatchObject({ allowed: false, clause: 'PIPL art. 29' });
    grant('sharing', { category: 'financial-account' });
    expect(d({ purpose: 'sharing', categories: ['financial-account'], recipientId: 'bank' })).toMatchObject({ allowed: true, clause: '3.1.2' });
    expect(d({ purpose: 'sharing', categories: ['financial-account', 'health'], recipientId: 'bank' })).toMatchObject({ allowed: false, clause: 'PIPL art. 29' });
  });

  it('needs a separate consent per destination outside the home region (5.3.2), or a 5.3 exception', () => {
    expect(d({ purpose: 'cross-border', categories: ['profile'] })).toMatchObject({ allowed: false, clause: '5.3' });
    expect(d({ purpose: 'cross-border', categories: ['profile'], country: 'CN' })).toMatchObject({ allowed: false, clause: '5.3' });
    expect(d({ purpose: 'cross-border', categories: ['profile'], country: 'SG' })).toMatchObject({ allowed: false, clause: '5.3.2' });
    grant('cross-border', { country: 'SG' });
    expect(d({ purpose: 'cross-border', categories: ['profile'], country: 'SG' })).toMatchObject({ allowed: true, clause: '5.3.2' });
    expect(d({ purpose: 'cross-border', categories: ['profile'], country: 'HK' })).toMatchObject({ allowed: false, clause: '5.3.2' });
    expect(d({ purpose: 'cross-border', categories: ['profile'], country: 'US', legalBasis: { legalBasis: 'contract-necessity', evidenceRef: 'booking 7' } }))
      .toMatchObject({ allowed: true, clause: '5.3.3' });
    expect(d({ purpose: 'cross-border', categories: ['profile'], country: 'US', legalBasis: { legalBasis: 'legal-obligation', evidenceRef: 'treaty' } }))
      .toMatchObject({ allowed: true, clause: '5.3.1' });
    // A processing in the home region needs no cross-border consent; elsewhere it does, whatever the purpose.
    grant('personalization');
    expect(d({ purpose: 'personalization', categories: ['activity-log'], country: 'CN' })).toMatchObject({ allowed: true, clause: '2.1.2' });
    expect(d({ purpose: 'personalization', categories: ['activity-log'], country: 'JP' })).toMatchObject({ allowed: false, clause: '5.3.2' });
    expect(d({ purpose: 'security', categories: ['device-info'], country: 'JP' })).toMatchObject({ allowed: false, clause: '2.4.2(4)' });
  });
});

describe('shut-down functions (2.4.2(5))', () => {
  it('denies processing for a function from the moment it stops, and for a purpose all of whose functions stopped', () => {
    grant('personalization');
    p.addShutdown({ shutdownId: 'sd-1', functionId: 'personalization', title: 'Personalised feed', effectiveAt: NOW + DAY });
    expect(d({ purpose: 'personalization', categories: ['activity-log'], functionId: 'personalization' })).toMatchObject({ allowed: true });
    p.addShutdown({ shutdownId: 'sd-2', functionId: 'personalization', title: 'Personalised feed', effectiveAt: NOW - 1 });
    expect(d({ purpose: 'personalization', categories: ['activity-log'], functionId: 'personalization' })).toMatchObject({ allowed: false, clause: '2.4.2(5)' });
    expect(d({ purpose: 'personalization', categories: ['activity-log'] })).toMatchObject({ allowed: false, clause: '2.4.2(5)' });
    expect(d({ purpose: 'account', categories: ['phone-number'], functionId: 'sign-in' })).toMatchObject({ allowed: true });
  });
});

describe('policy updates (VI)', () => {
  it('denies processing under a rights-restricting version until the subject consents expressly', () => {
    grant('personalization');
    versions.push(version({ version: 2, restrictsRights: true, affectedPurposes: ['personalization'], effectiveAt: NOW - DAY, noticeEndsAt: NOW - DAY, summary: 'logs kept longer' }));
    p.setPolicies(versions);
    const denied = d({ purpose: 'personalization', categories: ['activity-log'] });
    expect(denied).toMatchObject({ allowed: false, clause: 'VI', policyVersion: 2 });
    expect(denied.reason).toMatch(/Version 2 of the general policy restricts .*logs kept longer/);
    // Purposes the restriction does not touch keep working; so does processing on a legal basis.
    expect(d({ purpose: 'account', categories: ['phone-number'] })).toMatchObject({ allowed: true });
    accept('general', 2, false); // implied acceptance does not count for a restriction
    expect(d({ purpose: 'personalization', categories: ['activity-log'] })).toMatchObject({ allowed: false, clause: 'VI' });
    accept('general', 2);
    expect(d({ purpose: 'personalization', categories: ['activity-log'] })).toMatchObject({ allowed: true, clause: '2.1.2' });
  });

  it('a restriction that takes effect later does not deny yet', () => {
    grant('personalization');
    versions.push(version({ version: 2, restrictsRights: true, affectedPurposes: ['personalization'], effectiveAt: NOW + DAY, noticeEndsAt: NOW + DAY }));
    p.setPolicies(versions);
    expect(d({ purpose: 'personalization', categories: ['activity-log'] })).toMatchObject({ allowed: true });
    expect(d({ purpose: 'personalization', categories: ['activity-log'] }, NOW + 2 * DAY)).toMatchObject({ allowed: false, clause: 'VI' });
  });

  it('denies under a restriction in force even while an earlier version is still to come', () => {
    // Publication refuses this order now; versions stored before that rule must still deny.
    grant('personalization');
    versions.push(version({ version: 2, effectiveAt: NOW + DAY, noticeEndsAt: NOW + DAY }));
    versions.push(version({ version: 3, restrictsRights: true, affectedPurposes: ['personalization'], effectiveAt: NOW - DAY, noticeEndsAt: NOW - DAY }));
    p.setPolicies(versions);
    expect(d({ purpose: 'personalization', categories: ['activity-log'] })).toMatchObject({ allowed: false, clause: 'VI', policyVersion: 3 });
  });

  it('counts continued use after the notice period as acceptance of a version that restricts nothing', () => {
    versions.push(version({ version: 2, effectiveAt: NOW - 10 * DAY, noticeEndsAt: NOW + DAY }));
    p.setPolicies(versions);
    expect(ask({ purpose: 'account', categories: ['phone-number'] }).implied).toEqual([]);
    expect(ask({ purpose: 'account', categories: ['phone-number'] }, NOW + 2 * DAY).implied).toEqual([{ documentId: 'general', version: 2 }]);
    accept('general', 2, false);
    expect(ask({ purpose: 'account', categories: ['phone-number'] }, NOW + 2 * DAY).implied).toEqual([]);
  });
});

describe('service-specific policies (1.1)', () => {
  const specific = (v: Partial<PolicyVersionView> & { version: number }) => version({ documentId: 'sharing-policy', appliesTo: { service: 'data-sharing' }, ...v });

  it('applies a specific policy\'s terms to its service only, where they differ from the general terms', () => {
    grant('sharing', { recipientId: 'acme' });
    versions.push(specific({ version: 1, terms: { purposes: { sharing: { categories: ['transaction-record'] } } } }));
    p.setPolicies(versions);
    expect(d({ service: 'data-sharing', purpose: 'sharing', categories: ['transaction-record'], recipientId: 'acme' })).toMatchObject({ allowed: true });
    const narrowed = d({ service: 'data-sharing', purpose: 'sharing', categories: ['profile'], recipientId: 'acme' });
    expect(narrowed).toMatchObject({ allowed: false, clause: '1.1' });
    expect(narrowed.reason).toMatch(/sharing-policy policy v1, which takes precedence/);
    expect(d({ service: 'incident', purpose: 'sharing', categories: ['profile'], recipientId: 'acme' })).toMatchObject({ allowed: true });
  });

  it('keeps a subject on the old terms until they accept a specific version that widens processing', () => {
    versions.push(specific({ version: 1, terms: null }));
    versions.push(specific({ version: 2, restrictsRights: true, affectedPurposes: ['personalization'], terms: { purposes: { personalization: { legalBases: ['consent', 'contract-necessity'] } } } }));
    p.setPolicies(versions);
    const claim = { service: 'data-sharing' as const, purpose: 'personalization', categories: ['activity-log' as const], legalBasis: { legalBasis: 'contract-necessity' as const, evidenceRef: 'c-9' } };
    expect(d(claim)).toMatchObject({ allowed: false, clause: '2.4.2(4)' });
    accept('sharing-policy', 2);
    expect(d(claim)).toMatchObject({ allowed: true, clause: '2.4.2(4)viii' });
  });
});

describe('every decision names its clause', () => {
  it('for a spread of requests, the clause is a clause of the policy (or PIPL art. 29) and the reason is given', () => {
    grant('personalization');
    grant('sharing', { recipientId: 'acme' });
    const purposes = [...SEED_CATALOGUE.purposes.map((x) => x.id), 'unknown'];
    const functions = [undefined, ...SEED_CATALOGUE.functions.map((f) => f.id)];
    let n = 0;
    for (const purpose of purposes) {
      for (const [i, category] of DATA_CATEGORY_IDS.entries()) {
        const req: DecisionRequest = {
          subjectId: S, service: 'identity', purpose, categories: [category],
          ...(functions[i % functions.length] ? { functionId: functions[i % functions.length]! } : {}),
          ...(i % 3 === 0 ? { recipientId: 'acme' } : {}), ...(i % 4 === 0 ? { country: 'SG' } : i % 4 === 1 ? { country: 'CN' } : {}),
          ...(i % 5 === 0 ? { disclosure: true } : i % 5 === 1 ? { disclosure: false } : {}),
          ...(i % 6 === 0 ? { legalBasis: { legalBasis: LEGAL_BASIS_IDS[1 + (i % 10)] as never, evidenceRef: 'e' } } : {}),
        };
        const dec = decide(req, p.context(NOW), p.subject(S)).decision;
        expect([...CLAUSE_IDS, 'PIPL art. 29'], JSON.stringify({ req, dec })).toContain(dec.clause);
        expect(dec.reason.length).toBeGreaterThan(10);
        expect(dec.allowed ? dec.basis : null, JSON.stringify(dec)).toEqual(dec.allowed ? expect.anything() : null);
        n += 1;
      }
    }
    expect(n).toBeGreaterThan(150);
  });
});

describe('allStopped (2.4.2(5))', () => {
  // Purpose `research` served by two functions: one on activity logs (shut down), one on device data.
  const fn = (id: string, categories: string[]) => ({ id, categories }) as never;
  const ctx = {
    now: 1000,
    functionsByPurpose: new Map([['research', [fn('research-a', ['activity-log']), fn('research-d', ['device-info'])]]]),
    shutdowns: new Map([['research-a', { shutdownId: 'sd', functionId: 'research-a', title: 'A', effectiveAt: 500 }]]),
  };
  it('answers for one processing (all its categories in one function) and for a grant (any function using one of them)', () => {
    expect(allStopped(ctx, 'research', ['activity-log'])?.map((s) => s.functionId)).toEqual(['research-a']);
    expect(allStopped(ctx, 'research', ['activity-log'], 'any')?.map((s) => s.functionId)).toEqual(['research-a']);
    // A grant of both categories still serves the live function; a grant of device data alone too.
    expect(allStopped(ctx, 'research', ['activity-log', 'device-info'], 'any')).toBeNull();
    expect(allStopped(ctx, 'research', ['device-info'], 'any')).toBeNull();
    // Not yet in effect: nothing stopped.
    expect(allStopped({ ...ctx, now: 100 }, 'research', ['activity-log'])).toBeNull();
  });
});
