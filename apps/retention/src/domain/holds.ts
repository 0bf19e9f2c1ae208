import type { DataCategory, ErasureScope, LegalBasis } from '@pipp/contracts';
import type { RetentionPolicyData } from './policies.js';
import { scopeCategories } from './scope.js';

/** One day in ms. */
export const DAY_MS = 86_400_000;

/**
 * A legal hold the DPO placed on one subject's PI (policy 4.1 "with the exceptions stipulated by laws
 * and regulations", 2.4.2(4)i/iv, PIPL art. 47): `isolate` lets an erasure proceed but keeps the held
 * categories isolated until `until`; `block` refuses erasures of the held categories while it lasts
 * (e.g. a preservation order). No categories means every category.
 */
export interface SubjectHold {
  holdId: string;
  categories: DataCategory[];
  mode: 'isolate' | 'block';
  legalBasis: Exclude<LegalBasis, 'consent'>;
  evidenceRef: string;
  until: Date;
}

/** What a participant must keep despite the erasure (contracts LegalHoldSchema), with Date purgeAt. */
export interface LegalHoldItem {
  category: DataCategory;
  legalBasis: LegalBasis;
  evidenceRef: string;
  purgeAt: Date;
}

/** Why an erasure request is refused: a stable code, the clause and a message safe to show. */
export interface Refusal {
  code: 'PIPP_ERASURE_LEGAL_HOLD';
  clause: string;
  message: string;
}

/**
 * The legal holds an erasure carries and whether it must be refused (policy 4.1, 4.2, 5.1, 5.2.3):
 * - an active `block` hold on any category in scope refuses the request (code PIPP_ERASURE_LEGAL_HOLD,
 *   clause 4.1), naming the held categories and until when;
 * - `isolate` holds and retention policies with `keepOnErasure` (a law requires keeping the category,
 *   5.2.3) become legal holds: participants keep those categories isolated with the basis until the
 *   purge date (hold's `until`; for a policy, now + its period in days). When both apply to a
 *   category, the later purge date wins.
 * Pure; `now` is the request time.
 */
export function legalHoldsFor(scope: ErasureScope, holds: SubjectHold[], policies: RetentionPolicyData[], now: Date): { holds: LegalHoldItem[]; refusal?: Refusal } {
  const inScope = new Set(scopeCategories(scope));
  const active = holds.filter((h) => h.until > now);
  const covered = (h: SubjectHold) => (h.categories.length ? h.categories.filter((c) => inScope.has(c)) : [...inScope]);

  const blocking = active.filter((h) => h.mode === 'block' && covered(h).length);
  if (blocking.length) {
    const categories = [...new Set(blocking.flatMap(covered))].sort();
    const until = new Date(Math.max(...blocking.map((h) => h.until.getTime())));
    return {
      holds: [],
      refusal: {
        code: 'PIPP_ERASURE_LEGAL_HOLD',
        clause: '4.1',
        message: `A legal hold required by law covers ${categories.length === inScope.size && scope.kind === 'account' ? 'your account' : categories.join(', ')} until ${until.toISOString().slice(0, 10)}; erasure of it cannot proceed before then`,
      },
    };
  }

  const byCategory = new Map<DataCategory, LegalHoldItem>();
  const offer = (item: LegalHoldItem) => {
    const prev = byCategory.get(item.category);
    if (!prev || prev.purgeAt < item.purgeAt) byCategory.set(item.category, item);
  };
  for (const h of active.filter((x) => x.mode === 'isolate')) {
    for (const category of covered(h)) offer({ category, legalBasis: h.legalBasis, evidenceRef: h.evidenceRef, purgeAt: h.until });
  }
  for (const p of policies) {
    if (!p.keepOnErasure || p.service || !inScope.has(p.category)) continue;
    offer({ category: p.category, legalBasis: 'legal-obligation', evidenceRef: p.lawCitation ?? `retention policy ${p.category}`, purgeAt: new Date(now.getTime() + p.periodDays * DAY_MS) });
  }
  return { holds: [...byCategory.values()].sort((a, b) => a.category.localeCompare(b.category)) };
}
