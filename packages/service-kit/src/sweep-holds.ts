import type { DataCategory, EventPayload } from '@pipp/contracts';

/** What the legal holds in force cover, as a retention sweep request carries it. */
export type HeldSubjects = EventPayload<'privacy.retention.sweep-requested'>['heldSubjects'];

/** Whether a legal hold covers `category`: a hold listing no categories covers all (policy 4.1). */
export function holdCovers(hold: { categories: readonly string[] }, category: string): boolean {
  return !hold.categories.length || hold.categories.includes(category);
}

/** The subjects whose hold covers `category` (policy 4.1). */
export function heldSubjectIds(heldSubjects: HeldSubjects, category: DataCategory): string[] {
  return [...new Set((heldSubjects ?? []).filter((h) => holdCovers(h, category)).map((h) => h.subjectId))];
}

/**
 * A retention sweep participant's `filter` for `category`, narrowed to leave what legal holds cover
 * (policy 4.1; PIPL art. 47): `field` (the subject id) must not be one whose hold covers `category` (a
 * hold listing no categories covers all). Returns `filter` itself when no hold applies; a condition
 * already on `field` (e.g. `{ $ne: 'anonymous' }`) is kept. A breaker helper saw a sweep delete
 * device records that a blocking hold had just kept from the subject's own erasure request.
 */
export function leavingHeld<F extends Record<string, unknown>>(filter: F, heldSubjects: HeldSubjects, category: DataCategory, field = 'subjectId'): F {
  const ids = heldSubjectIds(heldSubjects, category);
  if (!ids.length) return filter;
  const current = filter[field];
  const condition = current === undefined ? {} : current !== null && typeof current === 'object' && !Array.isArray(current) && !(current instanceof Date) ? current : { $eq: current };
  return { ...filter, [field]: { ...condition, $nin: ids } };
}

/**
 * What legal holds cover, one entry per subject (policy 4.1): the union of their categories, or none
 * listed (every category) when one of the subject's holds covers all. Pure.
 */
export function heldBySubject(holds: readonly { subjectId: string; categories: readonly DataCategory[] }[]): { subjectId: string; categories: DataCategory[] }[] {
  const bySubject = new Map<string, Set<DataCategory> | 'all'>();
  for (const h of holds) {
    const prev = bySubject.get(h.subjectId);
    if (prev === 'all') continue;
    if (!h.categories.length) bySubject.set(h.subjectId, 'all');
    else bySubject.set(h.subjectId, new Set([...(prev ?? []), ...h.categories]));
  }
  return [...bySubject].map(([subjectId, c]) => ({ subjectId, categories: c === 'all' ? [] : [...c].sort() }));
}
