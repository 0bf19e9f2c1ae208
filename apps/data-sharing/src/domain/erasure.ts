import type { DataCategory, ErasureScope, LegalBasis } from '@pipp/contracts';
import { inScope } from './sharing.js';

/**
 * Planning this service's part of an erasure request (policy 4.1, 4.2 and its recipients paragraph;
 * PIPL art. 47): which sharing records go, which are kept by law, which recipients must be told to
 * delete what they received, and which are not asked because they hold the subject's own authorization.
 * Pure: the event handler executes the plan.
 */

export interface LegalHold {
  category: DataCategory;
  legalBasis: LegalBasis;
  evidenceRef: string;
  purgeAt: string;
}

export interface ShareRow {
  id: string;
  recipientId: string;
  categories: DataCategory[];
}

export interface RecipientNotice {
  recipientId: string;
  /** The categories the recipient must delete. */
  categories: DataCategory[];
  shareIds: string[];
}

export interface SharePlanResult {
  /** Records deleted outright. */
  erase: string[];
  /** Records that keep only the categories outside the scope (the recipient still holds those). */
  trim: { id: string; categories: DataCategory[] }[];
  /** Records kept by law, isolated until `purgeAt`. */
  hold: { id: string; hold: LegalHold }[];
  /** Recipients to notify, one notice each. */
  notify: RecipientNotice[];
  /** Recipients not asked: they hold the subject's independent authorization (4.2, last sentence). */
  notAsked: { recipientId: string; categories: DataCategory[]; authorizationId: string }[];
}

/** The hold that keeps records of `recordCategory` (e.g. `sharing-record`), if any; the latest purge date wins. */
export function holdFor(holds: LegalHold[], recordCategory: DataCategory): LegalHold | undefined {
  return holds.filter((h) => h.category === recordCategory).sort((a, b) => b.purgeAt.localeCompare(a.purgeAt))[0];
}

/**
 * Plans the erasure of sharing records and the notices to recipients.
 * - A share is in scope when the scope is the whole account, names `sharing-record`, or names a
 *   category the share carried; its recipient is asked to delete the in-scope categories it received.
 * - Out of the records: those fully in scope are erased (or held, when a `sharing-record` legal hold
 *   applies); those partly in scope keep the categories the recipient still holds.
 * - A recipient holding the subject's independent authorization is recorded, not asked.
 */
export function planShareErasure(
  scope: ErasureScope,
  holds: LegalHold[],
  shares: ShareRow[],
  independent: Map<string, string>,
): SharePlanResult {
  const result: SharePlanResult = { erase: [], trim: [], hold: [], notify: [], notAsked: [] };
  const recordHold = holdFor(holds, 'sharing-record');
  const wholeRecords = scope.kind === 'account' || scope.categories.includes('sharing-record');
  const byRecipient = new Map<string, { categories: Set<DataCategory>; shareIds: string[] }>();
  for (const s of shares) {
    const affected = inScope(scope, s.categories);
    if (!affected.length && !wholeRecords) continue;
    if (affected.length) {
      const entry = byRecipient.get(s.recipientId) ?? { categories: new Set<DataCategory>(), shareIds: [] };
      for (const c of affected) entry.categories.add(c);
      entry.shareIds.push(s.id);
      byRecipient.set(s.recipientId, entry);
    }
    const remaining = s.categories.filter((c) => !affected.includes(c));
    if (!wholeRecords && remaining.length) result.trim.push({ id: s.id, categories: remaining });
    else if (recordHold) result.hold.push({ id: s.id, hold: recordHold });
    else result.erase.push(s.id);
  }
  for (const [recipientId, e] of [...byRecipient].sort(([a], [b]) => a.localeCompare(b))) {
    const categories = [...e.categories].sort();
    const authorizationId = independent.get(recipientId);
    if (authorizationId) result.notAsked.push({ recipientId, categories, authorizationId });
    else result.notify.push({ recipientId, categories, shareIds: e.shareIds.sort() });
  }
  return result;
}

/**
 * Whether a record holding `categories` of PI (plus its own record category) is in scope, and whether
 * a hold keeps it. Used for disclosures, indirect collections and data about other people.
 */
export function recordFate(
  scope: ErasureScope,
  holds: LegalHold[],
  recordCategory: DataCategory,
  categories: DataCategory[],
): { inScope: false } | { inScope: true; hold?: LegalHold } {
  const hit = scope.kind === 'account' || scope.categories.includes(recordCategory) || inScope(scope, categories).length > 0;
  if (!hit) return { inScope: false };
  const hold = holdFor(holds, recordCategory) ?? holds.filter((h) => categories.includes(h.category)).sort((a, b) => b.purgeAt.localeCompare(a.purgeAt))[0];
  return hold ? { inScope: true, hold } : { inScope: true };
}
