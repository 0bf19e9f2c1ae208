// Pure privacy rules: recipients' eligibility, admissible bases, cross-border grounds (3.1, 3.4, 5.3),
// disclosure grounds (3.3), indirect collection (2.4.2(3)), other people's data (2.4.2(1)).
import { describe, expect, it } from 'vitest';
import { checkDisclosure } from '../src/domain/disclosure.js';
import { applyConfirmation, missingConfirmations, splitBySensitivity } from '../src/domain/indirect.js';
import { missingAttestation } from '../src/domain/other-people.js';
import { isCrossBorder } from '../src/domain/regions.js';
import { planShare, type RecipientFacts } from '../src/domain/sharing.js';
import { retryDelayMs } from '../src/domain/backoff.js';

const recipient = (over: Partial<RecipientFacts> = {}): RecipientFacts => ({
  id: 'rcp-1', status: 'active', country: 'CN', purposes: ['sharing'], categories: ['profile', 'phone-number'],
  attestation: { protectsNoLessThanPolicy: true }, ...over,
});
const base = { subjectId: 'u1', purpose: 'sharing', categories: ['profile' as const], homeRegion: 'CN', requestedBy: 'operator' as const };

describe('cross-border (5.3)', () => {
  it('treats HK, MO and TW as outside mainland China, and any other code too', () => {
    for (const c of ['HK', 'MO', 'TW', 'US', 'DE']) expect(isCrossBorder(c, 'CN'), c).toBe(true);
    expect(isCrossBorder('CN', 'CN')).toBe(false);
    expect(isCrossBorder('cn', 'CN')).toBe(false);
    expect(isCrossBorder('CN', 'DE')).toBe(true);
  });

  it('asks only the sharing decision for a domestic recipient', () => {
    const plan = planShare({ ...base, recipient: recipient() });
    expect(plan).toMatchObject({ ok: true, crossBorder: false });
    expect(plan.ok && plan.decisions.map((d) => d.key)).toEqual(['sharing']);
    expect(plan.ok && plan.decisions[0]!.request).toEqual({ subjectId: 'u1', service: 'data-sharing', categories: ['profile'], purpose: 'sharing', recipientId: 'rcp-1' });
  });

  it('refuses a transfer abroad without a 5.3 ground, before asking anyone', () => {
    const plan = planShare({ ...base, recipient: recipient({ country: 'HK' }) });
    expect(plan).toMatchObject({ ok: false, clause: '5.3' });
  });

  it('maps each 5.3 ground to the decision that checks it', () => {
    const law = planShare({ ...base, recipient: recipient({ country: 'US' }), transfer: { ground: '5.3.1', lawCitation: 'Law X art. 5' } });
    const auth = planShare({ ...base, recipient: recipient({ country: 'US' }), transfer: { ground: '5.3.2' } });
    const contract = planShare({ ...base, recipient: recipient({ country: 'US' }), transfer: { ground: '5.3.3', contractRef: 'C-9' } });
    const cb = (p: typeof law) => (p.ok ? p.decisions.find((d) => d.key === 'cross-border')!.request : undefined);
    expect(cb(law)).toMatchObject({ purpose: 'cross-border', country: 'US', legalBasis: { legalBasis: 'legal-obligation', evidenceRef: 'Law X art. 5' } });
    expect(cb(auth)).toMatchObject({ purpose: 'cross-border', country: 'US' });
    expect(cb(auth)).not.toHaveProperty('legalBasis');
    expect(cb(auth)).not.toHaveProperty('recipientId');
    expect(cb(contract)).toMatchObject({ legalBasis: { legalBasis: 'contract-necessity', evidenceRef: 'C-9' } });
    expect(planShare({ ...base, recipient: recipient({ country: 'US' }), transfer: { ground: '5.3.3', contractRef: ' ' } })).toMatchObject({ ok: false, clause: '5.3.3' });
  });
});

describe('recipient eligibility and bases (3.1, 3.4, 1.2)', () => {
  it('lets a data subject share on their own consent and authorization only, never on a basis staff claim', () => {
    const subject = { ...base, requestedBy: 'subject' as const };
    // A subject had shared their own health data on "law enforcement", evidence "x".
    expect(planShare({ ...subject, recipient: recipient(), basis: { legalBasis: 'law-enforcement', evidenceRef: 'x' } })).toMatchObject({ ok: false, kind: 'inadmissible', clause: '3.4' });
    expect(planShare({ ...subject, recipient: recipient({ country: 'US' }), transfer: { ground: '5.3.1', lawCitation: 'Law X' } })).toMatchObject({ ok: false, clause: '5.3.1' });
    expect(planShare({ ...subject, recipient: recipient({ country: 'US' }), transfer: { ground: '5.3.3', contractRef: 'C-9' } })).toMatchObject({ ok: false, clause: '5.3.3' });
    expect(planShare({ ...subject, recipient: recipient() })).toMatchObject({ ok: true });
    expect(planShare({ ...subject, recipient: recipient({ country: 'US' }), transfer: { ground: '5.3.2' } })).toMatchObject({ ok: true });
    expect(planShare({ ...base, requestedBy: 'service', recipient: recipient(), basis: { legalBasis: 'law-enforcement', evidenceRef: 'order 7' } })).toMatchObject({ ok: true });
  });

  it('refuses categories or purposes the recipient is not registered for, suspended recipients, and missing attestations', () => {
    expect(planShare({ ...base, categories: ['health'], recipient: recipient() })).toMatchObject({ ok: false, clause: '3.1', message: expect.stringMatching(/health/) });
    expect(planShare({ ...base, purpose: 'profile', recipient: recipient() })).toMatchObject({ ok: false, clause: '3.1' });
    expect(planShare({ ...base, recipient: recipient({ status: 'suspended' }) })).toMatchObject({ ok: false, message: expect.stringMatching(/suspended/) });
    expect(planShare({ ...base, recipient: recipient({ attestation: null }) })).toMatchObject({ ok: false, message: expect.stringMatching(/attested/) });
  });

  it('admits only the 3.1.1/3.4 bases for sharing and passes them to the decision with their evidence', () => {
    expect(planShare({ ...base, recipient: recipient(), basis: { legalBasis: 'contract-necessity', evidenceRef: 'x' } })).toMatchObject({ ok: false, clause: '3.4' });
    expect(planShare({ ...base, recipient: recipient(), basis: { legalBasis: 'service-security', evidenceRef: 'x' } })).toMatchObject({ ok: false, clause: '3.4' });
    const ok = planShare({ ...base, recipient: recipient(), basis: { legalBasis: 'law-enforcement', evidenceRef: 'court order 7' } });
    expect(ok.ok && ok.decisions[0]!.request.legalBasis).toEqual({ legalBasis: 'law-enforcement', evidenceRef: 'court order 7' });
  });
});

describe('public disclosure (3.3)', () => {
  it('accepts an active choice only from the subject themselves', () => {
    expect(checkDisclosure({ ground: '3.3.1', via: 'active-choice' }, { role: 'subject', sub: 'u1' }, 'u1')).toEqual({ ok: true, needs: 'nothing' });
    expect(checkDisclosure({ ground: '3.3.1', via: 'active-choice' }, { role: 'service', sub: 'identity' }, 'u1')).toMatchObject({ ok: false, clause: '3.3.1' });
    expect(checkDisclosure({ ground: '3.3.1', via: 'express-consent' }, { role: 'service', sub: 'identity' }, 'u1')).toEqual({ ok: true, needs: 'consent-decision' });
  });

  it('lets only operators decide 3.3.2 disclosures, with the violation and the measures taken', () => {
    const g = { ground: '3.3.2' as const, violationRef: 'V-1', violation: 'fraud', measuresTaken: ['account frozen'], basis: { legalBasis: 'public-interest' as const, evidenceRef: 'decision 3' } };
    expect(checkDisclosure(g, { role: 'subject', sub: 'u1' }, 'u1')).toMatchObject({ ok: false, clause: '3.3.2' });
    expect(checkDisclosure({ ...g, measuresTaken: [] }, { role: 'operator', sub: 'op' }, 'u1')).toMatchObject({ ok: false, clause: '3.3.2', message: expect.stringMatching(/measures/) });
    expect(checkDisclosure({ ...g, violationRef: '' }, { role: 'dpo', sub: 'd' }, 'u1')).toMatchObject({ ok: false, clause: '3.3.2' });
    expect(checkDisclosure(g, { role: 'operator', sub: 'op' }, 'u1')).toMatchObject({ ok: true, needs: 'consent-decision', basis: g.basis });
  });
});

describe('indirect collection (2.4.2(3)) and other people\'s data (2.4.2(1))', () => {
  it('lists every missing written confirmation of the source', () => {
    expect(missingConfirmations(undefined)).toHaveLength(5);
    expect(missingConfirmations({ documentRef: 'L-1', subjectConsented: true, lawfulSource: true, liabilityAccepted: true, signedAt: '2026-01-01T00:00:00Z' })).toEqual([]);
    expect(missingConfirmations({ documentRef: 'L-1', subjectConsented: true, lawfulSource: false, liabilityAccepted: true, signedAt: '2026-01-01T00:00:00Z' })).toEqual([expect.stringMatching(/lawfulSource/)]);
  });

  it('holds back sensitive categories until the subject confirms, and drops declined ones', () => {
    expect(splitBySensitivity(['profile', 'health', 'financial-account'])).toEqual({ usable: ['profile'], awaitingConfirmation: ['health', 'financial-account'] });
    const r = applyConfirmation(
      [{ category: 'profile', status: 'usable' }, { category: 'health', status: 'awaiting-confirmation' }, { category: 'financial-account', status: 'awaiting-confirmation' }],
      { confirm: ['health', 'profile'], decline: ['financial-account'] },
    );
    expect(r.items.map((i) => i.status)).toEqual(['usable', 'usable', 'declined']);
    expect(r).toMatchObject({ confirmed: ['health'], declined: ['financial-account'] });
  });

  it('requires the supplier\'s attestation of authorization', () => {
    expect(missingAttestation(undefined)).toHaveLength(3);
    expect(missingAttestation({ authorized: true, kind: 'guardian', statement: 'I am her father' })).toEqual([]);
  });
});

describe('webhook retry backoff', () => {
  it('doubles per attempt within ±20 % and stays under the cap', () => {
    expect(retryDelayMs(1, 1000, 60_000, 0.5)).toBe(1000);
    expect(retryDelayMs(3, 1000, 60_000, 0.5)).toBe(4000);
    expect(retryDelayMs(3, 1000, 60_000, 0)).toBe(3200);
    expect(retryDelayMs(3, 1000, 60_000, 0.9999)).toBeLessThanOrEqual(4800);
    expect(retryDelayMs(30, 1000, 60_000, 0.5)).toBe(60_000);
  });
});
