import {
  LEGAL_BASES, type DataCategory, type DecisionRequest, type LegalBasis, type Role,
} from '@pipp/contracts';
import { isCrossBorder } from './regions.js';

/** A non-consent basis claimed for a sharing, transfer or disclosure, with its evidence (policy 3.4). */
export interface ClaimedBasis {
  legalBasis: Exclude<LegalBasis, 'consent'>;
  evidenceRef: string;
}

/**
 * The grounds of policy 5.3 for PI leaving the home region:
 * - `5.3.1`: laws and regulations clearly provide for it (the law is cited);
 * - `5.3.2`: the subject's separate authorization for that country or region (asked of consent);
 * - `5.3.3`: necessary to conclude or perform a contract the subject is party to (its reference).
 */
export type TransferGround =
  | { ground: '5.3.1'; lawCitation: string }
  | { ground: '5.3.2' }
  | { ground: '5.3.3'; contractRef: string };

/** What the sharing rules need to know about a recipient. */
export interface RecipientFacts {
  id: string;
  status: 'active' | 'suspended';
  country: string;
  purposes: string[];
  categories: DataCategory[];
  attestation?: { protectsNoLessThanPolicy: boolean } | null;
}

/** A refusal: the clause behind it and a message that says what is missing. */
export interface Refusal {
  ok: false;
  kind: 'ineligible' | 'inadmissible' | 'transfer' | 'incomplete';
  clause: string;
  message: string;
}

/** True when a legal basis permits sharing, transfer and public disclosure without consent (policy 3.1.1, 3.4.1–3.4.7). */
export function admitsSharing(basis: LegalBasis): boolean {
  return LEGAL_BASES[basis].sharingClause !== null;
}

/** The policy clause a sharing basis rests on: 3.1.2 for consent, 3.4.x for the exceptions. */
export function sharingClauseOf(basis: LegalBasis): string {
  return LEGAL_BASES[basis].sharingClause ?? LEGAL_BASES[basis].clause;
}

/**
 * May this recipient receive these categories for this purpose at all (before any consent)?
 * A recipient receives only what it was registered for, only while active, and only after attesting
 * that it protects PI no less than this policy (policy 3.1, 5.3 last paragraph, 1.2).
 */
export function checkRecipientEligibility(recipient: RecipientFacts, purpose: string, categories: DataCategory[]): Refusal | { ok: true } {
  if (recipient.status !== 'active') {
    return { ok: false, kind: 'ineligible', clause: '3.1', message: `recipient ${recipient.id} is suspended and receives no PI` };
  }
  if (!recipient.attestation?.protectsNoLessThanPolicy) {
    return { ok: false, kind: 'ineligible', clause: '3.1', message: `recipient ${recipient.id} has not attested that it protects PI no less than this policy` };
  }
  if (!recipient.purposes.includes(purpose)) {
    return { ok: false, kind: 'ineligible', clause: '3.1', message: `recipient ${recipient.id} is not registered to receive PI for purpose "${purpose}" (registered: ${recipient.purposes.join(', ')})` };
  }
  const outside = categories.filter((c) => !recipient.categories.includes(c));
  if (outside.length) {
    return { ok: false, kind: 'ineligible', clause: '3.1', message: `recipient ${recipient.id} is not registered to receive: ${outside.join(', ')}` };
  }
  return { ok: true };
}

/** Refuses a claimed basis that does not permit sharing (contract necessity, service security, other law: policy 3.4). */
export function checkSharingBasis(basis: ClaimedBasis | undefined): Refusal | { ok: true } {
  if (!basis) return { ok: true };
  if (!admitsSharing(basis.legalBasis)) {
    return {
      ok: false, kind: 'inadmissible', clause: '3.4',
      message: `the legal basis "${basis.legalBasis}" permits processing (${LEGAL_BASES[basis.legalBasis].clause}) but not sharing, transfer or disclosure; 3.4.1–3.4.7 list the exceptions, otherwise the subject's consent is needed (3.1.2)`,
    };
  }
  if (!basis.evidenceRef.trim()) return { ok: false, kind: 'inadmissible', clause: '3.4', message: 'a legal basis needs an evidence reference' };
  return { ok: true };
}

/** A decision to ask of the consent service, with what it stands for. */
export interface PlannedDecision {
  /** `sharing` (policy 3.1) or `cross-border` (policy 5.3). */
  key: 'sharing' | 'cross-border';
  request: DecisionRequest;
}

export interface SharePlan {
  ok: true;
  crossBorder: boolean;
  decisions: PlannedDecision[];
}

/**
 * Plans the decisions a share needs (pure; the consent service answers them):
 * - always the sharing itself: separate consent for this recipient (3.1.2) or the claimed basis (3.1.1, 3.4);
 * - when the recipient is outside the home region, the 5.3 ground: a law (5.3.1, as `legal-obligation`
 *   with the citation as evidence), the subject's separate authorization for that country (5.3.2), or a
 *   contract the subject is party to (5.3.3, as `contract-necessity` with the contract reference).
 * Refuses before asking anyone when the recipient is ineligible, the basis inadmissible, or a transfer
 * lacks its ground.
 */
export function planShare(input: {
  subjectId: string;
  recipient: RecipientFacts;
  purpose: string;
  categories: DataCategory[];
  basis?: ClaimedBasis | undefined;
  transfer?: TransferGround | undefined;
  functionId?: string | undefined;
  homeRegion: string;
  /** Who asks: a data subject shares on their own consent only. */
  requestedBy: Role;
}): SharePlan | Refusal {
  // A legal basis other than consent, and the 5.3.1 and 5.3.3 grounds of a transfer, are the
  // controller's to claim, with evidence: a subject claimed law enforcement for their own health data.
  if (input.requestedBy === 'subject' && (input.basis || (input.transfer && input.transfer.ground !== '5.3.2'))) {
    return {
      ok: false, kind: 'inadmissible', clause: input.basis ? '3.4' : input.transfer!.ground,
      message: 'a data subject shares on their own consent (3.1.2) and transfers abroad on their own authorization (5.3.2); a legal basis, a law or a contract is claimed by staff or a service, with its evidence',
    };
  }
  const eligible = checkRecipientEligibility(input.recipient, input.purpose, input.categories);
  if (!eligible.ok) return eligible;
  const basisOk = checkSharingBasis(input.basis);
  if (!basisOk.ok) return basisOk;
  const common = {
    subjectId: input.subjectId,
    service: 'data-sharing' as const,
    categories: input.categories,
    ...(input.functionId ? { functionId: input.functionId } : {}),
  };
  const decisions: PlannedDecision[] = [{
    key: 'sharing',
    request: {
      ...common,
      purpose: input.purpose,
      recipientId: input.recipient.id,
      ...(input.basis ? { legalBasis: { legalBasis: input.basis.legalBasis, evidenceRef: input.basis.evidenceRef } } : {}),
    },
  }];
  const crossBorder = isCrossBorder(input.recipient.country, input.homeRegion);
  if (crossBorder) {
    const t = input.transfer;
    if (!t) {
      return {
        ok: false, kind: 'transfer', clause: '5.3',
        message: `recipient ${input.recipient.id} is in ${input.recipient.country}, outside ${input.homeRegion}: a transfer needs a ground of 5.3.1 (a law, cited), 5.3.2 (the subject's separate authorization for ${input.recipient.country}) or 5.3.3 (a contract the subject is party to)`,
      };
    }
    if (t.ground === '5.3.1' && !t.lawCitation.trim()) return { ok: false, kind: 'transfer', clause: '5.3.1', message: '5.3.1 needs the law that provides for the transfer (lawCitation)' };
    if (t.ground === '5.3.3' && !t.contractRef.trim()) return { ok: false, kind: 'transfer', clause: '5.3.3', message: '5.3.3 needs the reference of the contract the subject is party to (contractRef)' };
    decisions.push({ key: 'cross-border', request: transferDecision(common, input.recipient, t) });
  }
  return { ok: true, crossBorder, decisions };
}

/**
 * The consent decision that checks a 5.3 ground: purpose `cross-border` in the recipient's country.
 * It names no recipient: the separate authorization of 5.3.2 is per country (PIPL art. 39), the
 * sharing decision already covers the recipient (3.1.2).
 */
export function transferDecision(
  common: Pick<DecisionRequest, 'subjectId' | 'service' | 'categories' | 'functionId'>,
  recipient: Pick<RecipientFacts, 'country'>,
  t: TransferGround,
): DecisionRequest {
  const base: DecisionRequest = { ...common, purpose: 'cross-border', country: recipient.country };
  if (t.ground === '5.3.1') return { ...base, legalBasis: { legalBasis: 'legal-obligation', evidenceRef: t.lawCitation } };
  if (t.ground === '5.3.3') return { ...base, legalBasis: { legalBasis: 'contract-necessity', evidenceRef: t.contractRef } };
  return base;
}

/** True when a share of `shared` categories falls within an erasure scope. */
export function inScope(scope: { kind: 'account' } | { kind: 'categories'; categories: DataCategory[] }, shared: readonly DataCategory[]): DataCategory[] {
  if (scope.kind === 'account') return [...shared];
  return shared.filter((c) => scope.categories.includes(c));
}
