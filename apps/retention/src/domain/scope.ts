import {
  DATA_CATEGORIES, DATA_CATEGORY_IDS, type DataCategory, type ErasureParticipant, type ErasureScope,
} from '@pipp/contracts';

/**
 * A canonical key of an erasure scope: `account`, or `categories:` and the sorted categories. Two
 * requests of one subject with the same key ask for the same thing (the second joins the first).
 */
export function scopeKey(scope: ErasureScope): string {
  return scope.kind === 'account' ? 'account' : `categories:${[...scope.categories].sort().join(',')}`;
}

/** The categories a scope covers (every category for `account`). */
export function scopeCategories(scope: ErasureScope): DataCategory[] {
  return scope.kind === 'account' ? [...DATA_CATEGORY_IDS] : [...scope.categories];
}

/** True when `outer` covers everything `inner` asks for (an account erasure covers any category one). */
export function coversScope(outer: ErasureScope, inner: ErasureScope): boolean {
  if (outer.kind === 'account') return true;
  if (inner.kind === 'account') return false;
  return inner.categories.every((c) => outer.categories.includes(c));
}

/**
 * The participants an erasure must wait for (policy 4.1, 4.2): every registered participant for an
 * account erasure; for some categories, the registered holders of those categories (contracts
 * `DATA_CATEGORIES[c].holders`), plus retention itself, which records the erased subject against
 * backups (4.2-backups) whatever the scope. Never empty when retention is registered.
 */
export function participantsFor(scope: ErasureScope, registered: readonly ErasureParticipant[]): ErasureParticipant[] {
  if (scope.kind === 'account') return [...registered];
  const holders = new Set<string>(scope.categories.flatMap((c) => [...DATA_CATEGORIES[c].holders]));
  return registered.filter((p) => p === 'retention' || holders.has(p));
}
