import type { DataCategory, ErasureParticipant } from '@pipp/contracts';

/**
 * PI a participant kept by law despite an erasure (policy 4.2, 5.1, PIPL art. 47): isolated from
 * further processing, with its basis and purge date, and purged when that date comes.
 */
export interface KeptRecord {
  keptId: string;
  subjectId: string;
  participant: ErasureParticipant;
  category: DataCategory;
  purgeAt: Date;
}

/** One purge to run: a subject, the participants holding due records and the categories in question. */
export interface PurgePlan {
  subjectId: string;
  participants: ErasureParticipant[];
  categories: DataCategory[];
  keptIds: string[];
}

/**
 * Groups the kept records whose purge date has come into one purge per subject (an erasure request
 * narrowed to those participants and categories, with `purgeIsolated`). Records the retention service
 * keeps itself (its erasure-request ledger) are left to its own expiry sweep. Pure.
 */
export function planPurges(records: KeptRecord[], now: Date): PurgePlan[] {
  const bySubject = new Map<string, PurgePlan>();
  for (const r of records) {
    if (r.purgeAt > now || r.participant === 'retention') continue;
    const plan = bySubject.get(r.subjectId) ?? { subjectId: r.subjectId, participants: [], categories: [], keptIds: [] };
    if (!plan.participants.includes(r.participant)) plan.participants.push(r.participant);
    if (!plan.categories.includes(r.category)) plan.categories.push(r.category);
    plan.keptIds.push(r.keptId);
    bySubject.set(r.subjectId, plan);
  }
  return [...bySubject.values()].map((p) => ({ ...p, participants: p.participants.sort(), categories: p.categories.sort() }));
}
