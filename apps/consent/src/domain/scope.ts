import { isSensitive, type DataCategory } from '@pipp/contracts';

/**
 * What one consent applies to beyond its purpose, where the policy or PIPL asks for a separate consent:
 * a recipient (3.1.2, PIPL art. 23), public disclosure (3.3.1, art. 25), a sensitive category (art. 29)
 * or a destination country (5.3.2, art. 39). A consent names at most one of them; a consent screen that
 * asks for several records one consent per item, each with its own receipt.
 */
export interface ConsentScope {
  recipientId?: string | undefined;
  disclosure?: boolean | undefined;
  category?: DataCategory | undefined;
  country?: string | undefined;
}

/**
 * The ledger key of a consent: the purpose alone, or the purpose and one scope item, e.g.
 * `sharing|recipient:acme`, `personalization|category:precise-location`, `cross-border|country:SG`.
 */
export function scopeKey(purpose: string, scope?: ConsentScope | null): string {
  if (!scope) return purpose;
  if (scope.recipientId !== undefined) return `${purpose}|recipient:${scope.recipientId}`;
  if (scope.disclosure) return `${purpose}|disclosure`;
  if (scope.category !== undefined) return `${purpose}|category:${scope.category}`;
  if (scope.country !== undefined) return `${purpose}|country:${scope.country}`;
  return purpose;
}

/**
 * Why a scope cannot be consented to, or null when it can: more than one item, `disclosure: false`,
 * a category that is not sensitive or not processed for the purpose, or the home region as a
 * "destination" (no separate consent is needed there).
 */
export function scopeProblem(scope: ConsentScope | undefined, purposeCategories: readonly DataCategory[], homeRegion: string): string | null {
  if (!scope) return null;
  const items = [scope.recipientId, scope.disclosure, scope.category, scope.country].filter((v) => v !== undefined);
  if (items.length > 1) return 'a consent names at most one of recipientId, disclosure, category and country; record one consent per item';
  if (scope.disclosure === false) return 'disclosure must be true when given (a consent to public disclosure)';
  if (scope.category !== undefined) {
    if (!isSensitive(scope.category)) return `category ${scope.category} is not sensitive: it needs no separate consent, the purpose's consent covers it`;
    if (!purposeCategories.includes(scope.category)) return `category ${scope.category} is not processed for this purpose`;
  }
  if (scope.country !== undefined && scope.country === homeRegion) return `${homeRegion} is the home region: storing data there needs no separate consent`;
  return null;
}

/** The scope in canonical form (only the item it names), or undefined for a purpose-wide consent. */
export function canonicalScope(scope: ConsentScope | undefined | null): ConsentScope | undefined {
  if (!scope) return undefined;
  if (scope.recipientId !== undefined) return { recipientId: scope.recipientId };
  if (scope.disclosure) return { disclosure: true };
  if (scope.category !== undefined) return { category: scope.category };
  if (scope.country !== undefined) return { country: scope.country };
  return undefined;
}

/** The purpose and scope a ledger key stands for (inverse of scopeKey). */
export function parseScopeKey(key: string): { purpose: string; scope?: ConsentScope } {
  const [purpose, item] = key.split('|', 2) as [string, string | undefined];
  if (item === undefined) return { purpose };
  if (item === 'disclosure') return { purpose, scope: { disclosure: true } };
  const colon = item.indexOf(':');
  const dim = item.slice(0, colon);
  const value = item.slice(colon + 1);
  if (dim === 'recipient') return { purpose, scope: { recipientId: value } };
  if (dim === 'category') return { purpose, scope: { category: value as DataCategory } };
  if (dim === 'country') return { purpose, scope: { country: value } };
  return { purpose };
}
