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
 * erased or anonymized, `kept` stay because basic functions still need them.
 */
export function shutdownNotice(input: { title: string; effectiveAt: Date; action: 'erase' | 'anonymize'; categories: DataCategory[]; kept?: DataCategory[] }): { title: string; body: string; dataHandling: string } {
  const when = input.effectiveAt.toISOString().slice(0, 10);
  const fate = input.action === 'erase' ? 'deleted' : 'anonymized so that it can no longer identify you';
  const handled = input.categories.length ? `the personal information related to it that we hold (${input.categories.join(', ')}) will be ${fate}` : 'none of the personal information we hold is only for it';
  const kept = input.kept?.length ? ` What the basic services still need (${input.kept.join(', ')}) stays for them.` : '';
  return {
    title: `${input.title} stops operating`.slice(0, 200),
    body: `${input.title} stops operating on ${when}. We have stopped collecting personal information for it, and ${handled}.${kept} Other products and services are not affected.`,
    dataHandling: `${handled[0]!.toUpperCase()}${handled.slice(1)}, except what the law requires us to keep.${kept}`,
  };
}
