// The catalogue's invariants, consent scopes, record hashes and receipts, erasure plans and the
// detection of rights-restricting policy terms, as pure functions.
import { describe, expect, it } from 'vitest';
import { SEED_CATALOGUE, catalogueProblems, type Catalogue } from '../src/domain/catalogue.js';
import { planErasure } from '../src/domain/erasure.js';
import { rightsRestrictions } from '../src/domain/policy.js';
import { buildReceipt, canonicalJson, pseudonymFor, recordHash, type RecordContent } from '../src/domain/receipt.js';
import { parseScopeKey, scopeKey, scopeProblem } from '../src/domain/scope.js';

const edit = (fn: (c: Catalogue) => void): Catalogue => {
  const c = structuredClone(SEED_CATALOGUE);
  fn(c);
  return c;
};

describe('catalogue invariants', () => {
  it('the seed catalogue keeps every invariant', () => {
    expect(catalogueProblems(SEED_CATALOGUE)).toEqual([]);
  });

  it('refuses a basic function that needs an additional purpose, so refusing it could never block a basic function (2.1.2)', () => {
    const problems = catalogueProblems(edit((c) => { c.functions.find((f) => f.id === 'sign-in')!.purposes.push('personalization'); }));
    expect(problems).toEqual([expect.objectContaining({ path: '/functions/sign-in', clause: '2.1.2' })]);
  });

  it('refuses bases and categories that do not fit', () => {
    const problems = catalogueProblems(edit((c) => {
      const security = c.purposes.find((p) => p.id === 'security')!;
      security.legalBases = ['legal-obligation']; // standing basis service-security no longer admitted
      const profile = c.purposes.find((p) => p.id === 'profile')!;
      profile.legalBases = ['contract-necessity']; // additional, not consent-based
      c.functions.find((f) => f.id === 'registration')!.categories.push('activity-log'); // outside its purposes
      c.purposes.find((p) => p.id === 'personalization')!.grantedAtRegistration = true; // additional granted at registration
      c.functions.find((f) => f.id === 'notifications')!.purposes.push('no-such-purpose');
    }));
    expect(problems.map((p) => `${p.path} ${p.clause}`).sort()).toEqual([
      '/functions/notifications 2.1',
      '/functions/registration 2.4.2(2)',
      '/purposes/personalization 2.1.1',
      '/purposes/profile 2.1.2',
      '/purposes/security 2.4.2(4)',
    ]);
  });
});

describe('consent scopes', () => {
  it('keys a consent by purpose and at most one scope item, and reads the key back', () => {
    const cases = [undefined, { recipientId: 'acme' }, { disclosure: true }, { category: 'health' as const }, { country: 'SG' }];
    for (const scope of cases) {
      const key = scopeKey('sharing', scope);
      expect(parseScopeKey(key)).toEqual(scope ? { purpose: 'sharing', scope } : { purpose: 'sharing' });
    }
  });

  it('refuses scopes that need no separate consent or name several items', () => {
    expect(scopeProblem({ recipientId: 'a', country: 'SG' }, ['profile'], 'CN')).toMatch(/at most one/);
    expect(scopeProblem({ category: 'profile' }, ['profile'], 'CN')).toMatch(/not sensitive/);
    expect(scopeProblem({ category: 'health' }, ['profile'], 'CN')).toMatch(/not processed for this purpose/);
    expect(scopeProblem({ country: 'CN' }, ['profile'], 'CN')).toMatch(/home region/);
    expect(scopeProblem({ disclosure: false }, ['profile'], 'CN')).toMatch(/must be true/);
    expect(scopeProblem({ category: 'health' }, ['health'], 'CN')).toBeNull();
  });
});

describe('records and receipts', () => {
  const content: RecordContent = {
    id: 'cr_1', seq: 3, kind: 'purpose', purpose: 'sharing', scope: { recipientId: 'acme' }, state: 'granted', consentType: 'express',
    channel: 'app', policyVersion: 1, categories: ['transaction-record', 'health'], noticeHash: 'abc', language: 'zh-CN',
    actor: { role: 'subject' }, at: new Date('2026-02-01T10:00:00Z'),
  };

  it('hashes a record\'s content independently of key order, and any change changes it', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 1 }] })).toBe('{"a":[{"c":1,"d":2}],"b":1}');
    const h = recordHash(content);
    expect(recordHash({ ...content })).toBe(h);
    expect(recordHash({ ...content, state: 'withdrawn' })).not.toBe(h);
    expect(recordHash({ ...content, categories: ['transaction-record'] })).not.toBe(h);
  });

  it('builds a Kantara / ISO 27560 receipt with the purpose, categories, third party and sensitive data', () => {
    const purpose = SEED_CATALOGUE.purposes.find((p) => p.id === 'sharing')!;
    const r = buildReceipt({ ...content, hash: recordHash(content) }, {
      subjectId: 'sub-1', purpose, controller: { name: 'Operator', contact: 'dpo@x' }, jurisdiction: 'CN',
      policyUrl: 'https://x/v1/consent/public/policies/general/versions/1', withdrawUrl: 'https://x/v1/consent/subjects/sub-1/consents',
    });
    expect(r).toMatchObject({
      version: 'KI-CR-v1.1.0', jurisdiction: 'CN', consentTimestamp: 1769940000, collectionMethod: 'app', consentReceiptID: 'cr_1',
      language: 'zh-CN', piiPrincipalId: 'sub-1', sensitive: true, spiCat: ['Medical and health information'],
      services: [{ service: 'sharing', purposes: [{ purpose: 'Sharing with a third party', consentType: 'EXPLICIT', thirdPartyDisclosure: true, thirdPartyName: 'acme', primaryPurpose: false }] }],
      event: { type: 'given', time: '2026-02-01T10:00:00.000Z', method: 'app' }, state: 'granted', recordHash: recordHash(content), notice: { sha256: 'abc' },
    });
    expect(r.services[0]!.purposes[0]!.termination).toMatch(/Withdraw at any time.*subjects\/sub-1\/consents/);
  });

  it('derives a stable pseudonym from the subject id and the key, unlinkable without the key', () => {
    expect(pseudonymFor('sub-1', 'k'.repeat(32))).toBe(pseudonymFor('sub-1', 'k'.repeat(32)));
    expect(pseudonymFor('sub-1', 'k'.repeat(32))).not.toBe(pseudonymFor('sub-1', 'j'.repeat(32)));
    expect(pseudonymFor('sub-1', 'k'.repeat(32))).not.toContain('sub-1');
  });
});

describe('erasure plan', () => {
  const now = new Date('2026-03-01T00:00:00Z');
  it('keeps the ledger as pseudonymized proof for the default period, and erases processing records', () => {
    const plan = planErasure({ records: 5, legalBasisUses: 2, legalHolds: [], now, proofRetentionDays: 1095 });
    expect(plan.counts).toEqual({ erased: 2, anonymized: 0, kept: 5 });
    expect(plan.kept).toEqual([expect.objectContaining({ category: 'consent-record', legalBasis: 'other-law', purgeAt: '2029-02-28T00:00:00.000Z' })]);
    expect(plan.kept[0]!.reason).toMatch(/PIPL art\. 69/);
  });

  it('honours a longer legal hold on consent records with its basis; keeps nothing when there is nothing', () => {
    const hold = { category: 'consent-record', legalBasis: 'law-enforcement' as const, evidenceRef: 'case 42', purgeAt: '2035-01-01T00:00:00.000Z' };
    expect(planErasure({ records: 1, legalBasisUses: 0, legalHolds: [hold], now, proofRetentionDays: 1095 }).kept[0]).toMatchObject({ legalBasis: 'law-enforcement', purgeAt: hold.purgeAt });
    expect(planErasure({ records: 0, legalBasisUses: 0, legalHolds: [hold], now, proofRetentionDays: 1095 })).toEqual({ counts: { erased: 0, anonymized: 0, kept: 0 }, kept: [] });
  });
});

describe('rights-restricting terms (VI)', () => {
  const catalogue = new Map(SEED_CATALOGUE.purposes.map((p) => [p.id, p]));
  it('flags more categories or a new non-consent basis; narrowing restricts nothing', () => {
    expect(rightsRestrictions(null, { purposes: { sharing: { categories: ['transaction-record'] } } }, catalogue)).toEqual({ reasons: [], purposes: [] });
    const wider = rightsRestrictions(null, { purposes: { personalization: { categories: ['activity-log', 'device-info'], legalBases: ['consent', 'contract-necessity'] } } }, catalogue);
    expect(wider.purposes).toEqual(['personalization']);
    expect(wider.reasons).toEqual([
      'purpose personalization would process more data categories: device-info',
      'purpose personalization would admit processing without consent on: contract-necessity',
    ]);
    // Compared with the previous version's terms, not the catalogue.
    expect(rightsRestrictions({ purposes: { personalization: { legalBases: ['consent', 'contract-necessity'] } } }, { purposes: { personalization: { legalBases: ['consent', 'contract-necessity'] } } }, catalogue).reasons).toEqual([]);
  });
});

describe('projection', () => {
  const fact = (subjectId: string, seq: number, state: 'granted' | 'withdrawn', at: number) => ({
    _id: `r-${subjectId}-${seq}`, subjectId, seq, kind: 'purpose' as const, scopeKey: 'personalization', state, consentType: 'express' as const,
    categories: ['activity-log'], policyVersion: 1, at: new Date(at), recordedAt: new Date(at),
  });

  it('applies records in any order and more than once: the highest sequence number wins per key', async () => {
    const { Projection } = await import('../src/domain/projection.js');
    const p = new Projection('CN');
    const records = [fact('s', 1, 'granted', 1000), fact('s', 2, 'withdrawn', 2000), fact('s', 3, 'granted', 3000)];
    for (const r of [records[2]!, records[0]!, records[1]!, records[2]!, records[0]!]) p.apply(r);
    expect(p.subject('s')!.consents.get('personalization')).toMatchObject({ seq: 3, state: 'granted', recordId: 'r-s-3' });
    expect(p.lastSeq('s')).toBe(3);
  });

  it('does not bring an erased subject back from records stored before the erasure, but counts later ones', async () => {
    const { Projection } = await import('../src/domain/projection.js');
    const p = new Projection('CN');
    p.apply(fact('s', 1, 'granted', Date.now() - 1000));
    p.drop('s');
    p.apply(fact('s', 1, 'granted', Date.now() - 1000));
    expect(p.subject('s')).toBeUndefined();
    p.apply(fact('s', 1, 'granted', Date.now() + 1000));
    expect(p.subject('s')!.consents.get('personalization')!.state).toBe('granted');
  });
});
