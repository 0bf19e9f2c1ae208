import type { Catalogue } from '@pipp/consent-client';
import type { DataCategory } from '@pipp/contracts';

/** Largest audience of one notification request (contracts `privacy.notification.requested`). */
export const MAX_AUDIENCE = 1000;

export type NoticeAudience = { subjectIds: string[] } | { allSubjects: true };

/**
 * Who is told that a function stops (policy 2.4.2(5): "notify you ... one by one or by
 * announcement"): the affected subjects one by one when the operator knows them (in requests of at
 * most 1000), otherwise every subject, which the incident service turns into an announcement when
 * one-by-one notice is impractical.
 */
export function noticeAudiences(affectedSubjects: string[] | undefined): NoticeAudience[] {
  const ids = [...new Set(affectedSubjects ?? [])];
  if (!ids.length) return [{ allSubjects: true }];
  const out: NoticeAudience[] = [];
  for (let i = 0; i < ids.length; i += MAX_AUDIENCE) out.push({ subjectIds: ids.slice(i, i + MAX_AUDIENCE) });
  return out;
}

/**
 * The notice's text: what stops, from when, and what happens to the PI (2.4.2(5)): `categories` are
 * erased or anonymized, `kept` stay because other functions still process them.
 */
export function shutdownNotice(input: { title: string; effectiveAt: Date; action: 'erase' | 'anonymize'; categories: DataCategory[]; kept?: DataCategory[] }): { title: string; body: string; dataHandling: string } {
  const when = input.effectiveAt.toISOString().slice(0, 10);
  const fate = input.action === 'erase' ? 'deleted' : 'anonymized so that it can no longer identify you';
  const handled = input.categories.length ? `the personal information related to it that we hold (${input.categories.join(', ')}) will be ${fate}` : 'none of the personal information we hold is only for it';
  const kept = input.kept?.length ? ` What other services still use (${input.kept.join(', ')}) stays for them.` : '';
  return {
    title: `${input.title} stops operating`.slice(0, 200),
    body: `${input.title} stops operating on ${when}. We have stopped collecting personal information for it, and ${handled}.${kept} Other products and services are not affected.`,
    dataHandling: `${handled[0]!.toUpperCase()}${handled.slice(1)}, except what the law requires us to keep.${kept}`,
  };
}

/** What a shutdown stops (`categories`), erases (`erasedCategories`) and keeps for the functions that go on. */
export type ShutdownScope =
  | { ok: true; categories: DataCategory[]; erasedCategories: DataCategory[]; keptCategories: { category: DataCategory; usedBy: string[] }[] }
  | { ok: false; problem: 'unknown-function' | 'not-collected'; message: string };

/**
 * What a shutdown stops and what it erases (policy 2.4.2(5)), from consent's catalogue: the function
 * must be active there, the categories (default: all it collects) must be its own; those another
 * active function still processes are kept, naming it (closing one function must not take another's
 * data: 2.1.1, 2.1.2). A function that only passes data on (each of its purposes needs a separate
 * consent per recipient, disclosure or country: sharing, public disclosure, transfer abroad) holds none
 * of its own and keeps nothing; nor does a function in `closed` (shut down already: the catalogue may
 * not show it yet), so of two functions closed one after the other, the second erases what both used. Pure.
 */
export function shutdownScope(input: { functionId: string; categories?: DataCategory[] | undefined }, catalogue: Catalogue, closed: ReadonlySet<string> = new Set()): ShutdownScope {
  const { functions } = catalogue;
  const passesOn = new Set(catalogue.purposes.filter((p) => p.requires !== null).map((p) => p.id));
  const fn = functions.find((f) => f.id === input.functionId && f.status === 'active');
  if (!fn) return { ok: false, problem: 'unknown-function', message: `The consent catalogue has no active function ${input.functionId}` };
  const categories = input.categories ?? fn.categories;
  const foreign = categories.filter((c) => !fn.categories.includes(c));
  if (foreign.length) return { ok: false, problem: 'not-collected', message: `${fn.id} does not collect ${foreign.join(', ')} (it collects ${fn.categories.join(', ') || 'nothing'})` };
  const holders = functions.filter((f) => f.id !== fn.id && f.status === 'active' && !f.shutDown && !closed.has(f.id) && f.purposes.some((p) => !passesOn.has(p)));
  const keptCategories = categories
    .map((category) => ({ category, usedBy: holders.filter((f) => f.categories.includes(category)).map((f) => f.id) }))
    .filter((k) => k.usedBy.length);
  const erasedCategories = categories.filter((c) => !keptCategories.some((k) => k.category === c));
  return { ok: true, categories, erasedCategories, keptCategories };
}
