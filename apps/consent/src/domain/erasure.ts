import type { LegalBasis } from '@pipp/contracts';

const DAY_MS = 24 * 3600 * 1000;

/** A legal hold from an erasure request: data of this category must be kept, isolated, until purgeAt. */
export interface Hold {
  category: string;
  legalBasis: LegalBasis;
  evidenceRef: string;
  purgeAt: string;
}

export interface ErasurePlan {
  counts: { erased: number; anonymized: number; kept: number };
  kept: { category: 'consent-record'; legalBasis: LegalBasis; purgeAt: string; reason: string }[];
}

/**
 * What this service does with a subject's data on erasure (policy 4.1, 4.2; PIPL art. 47, 69): the
 * ledger records are kept, pseudonymized, as proof that consent was given or withdrawn — the law puts
 * the burden of proving lawful processing on the controller (PIPL art. 69), for at least the general
 * limitation period (Civil Code art. 188: 3 years, the default of CONSENT_PROOF_RETENTION_DAYS) or
 * longer under a legal hold for `consent-record`, whose basis then applies; records of processing
 * without consent are erased. Pure.
 */
export function planErasure(input: {
  records: number;
  legalBasisUses: number;
  legalHolds: Hold[];
  now: Date;
  proofRetentionDays: number;
}): ErasurePlan {
  const byDefault = input.now.getTime() + input.proofRetentionDays * DAY_MS;
  const hold = input.legalHolds.find((h) => h.category === 'consent-record');
  const holdUntil = hold ? Date.parse(hold.purgeAt) : 0;
  const kept = input.records === 0 ? [] : [hold && holdUntil >= byDefault
    ? {
      category: 'consent-record' as const, legalBasis: hold.legalBasis, purgeAt: new Date(holdUntil).toISOString(),
      reason: `Proof of consent kept under a legal hold (${hold.evidenceRef}), pseudonymized: no subject id, isolated from any processing until purged`,
    }
    : {
      category: 'consent-record' as const, legalBasis: 'other-law' as LegalBasis, purgeAt: new Date(byDefault).toISOString(),
      reason: 'Proof that consent was given or withdrawn (PIPL art. 69 burden of proof; Civil Code art. 188 limitation period), pseudonymized: no subject id, isolated from any processing until purged',
    }];
  return { counts: { erased: input.legalBasisUses, anonymized: 0, kept: input.records }, kept };
}
