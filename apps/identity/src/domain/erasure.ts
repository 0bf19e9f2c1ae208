import type { DataCategory, ErasureScope } from '@pipp/contracts';

/** The categories of PI identity holds (contracts' DATA_CATEGORIES with identity among the holders). */
export const IDENTITY_CATEGORIES = [
  'phone-number', 'identity-verification', 'credentials', 'profile', 'session', 'device-info', 'activity-log', 'contact-channel',
] as const satisfies readonly DataCategory[];
export type IdentityCategory = (typeof IDENTITY_CATEGORIES)[number];

export interface Hold { category: DataCategory; legalBasis: string; evidenceRef: string; purgeAt: string }

export interface ErasurePlan {
  /** Categories to erase or anonymize in identity. */
  categories: IdentityCategory[];
  /** Categories to keep, isolated, because the request carries a legal hold for them. */
  held: Map<IdentityCategory, Hold>;
  /** The account itself is closed (scope `account`, or the phone number, which an account cannot lack). */
  closesAccount: boolean;
}

/**
 * What an erasure request means for identity (policy 4.1, 4.2, 5.1; DESIGN.md erasure saga): scope
 * `account` covers every category identity holds and closes the account; scope `categories` covers
 * those identity holds; erasing the phone number closes the account too (it is required, 2.4.1(1)i).
 * A legal hold on a category keeps that category's data, isolated, instead of erasing it.
 */
export function planErasure(scope: ErasureScope, legalHolds: Hold[]): ErasurePlan {
  const wanted: IdentityCategory[] = scope.kind === 'account'
    ? [...IDENTITY_CATEGORIES]
    : IDENTITY_CATEGORIES.filter((c) => (scope.categories as readonly string[]).includes(c));
  const closesAccount = scope.kind === 'account' || wanted.includes('phone-number');
  const categories: IdentityCategory[] = closesAccount ? [...IDENTITY_CATEGORIES] : wanted;
  const held = new Map<IdentityCategory, Hold>();
  for (const h of legalHolds) {
    if ((categories as readonly string[]).includes(h.category)) held.set(h.category as IdentityCategory, h);
  }
  return { categories, held, closesAccount };
}

/** Cut-off date of a retention rule: records older than `periodDays` before `asOf` are expired (5.1). */
export function retentionCutoff(asOf: Date, periodDays: number): Date {
  return new Date(asOf.getTime() - periodDays * 86_400_000);
}
