import { isSensitive, type DataCategory } from '@pipp/contracts';

/**
 * Indirect collection: PI we receive from a third party (policy 2.4.2(3), 2.4.2(2); PIPL art. 29).
 * The source must confirm in writing, before we accept anything, that it collected the PI with the
 * subject's consent (covering sharing it with us) and that its source is lawful, and accept liability
 * for violations. The subject is informed. Sensitive PI stays unusable until the subject confirms it.
 */
export interface SourceConfirmation {
  /** Reference of the written confirmation (contract clause, signed letter id …). */
  documentRef?: string;
  /** The source confirms the subject consented to collection and to sharing with us. */
  subjectConsented?: boolean;
  /** The source confirms its collection was lawful and compliant. */
  lawfulSource?: boolean;
  /** The source accepts legal responsibility for any violation on its side. */
  liabilityAccepted?: boolean;
  /** Who signed for the source (a role or title, not a person's PI). */
  signatory?: string;
  /** When the source signed it (ISO 8601). */
  signedAt?: string;
}

/** Lists what is missing from a source's written confirmation; empty when complete. */
export function missingConfirmations(c: SourceConfirmation | undefined): string[] {
  const missing: string[] = [];
  if (!c?.documentRef?.trim()) missing.push('documentRef (the written confirmation)');
  if (c?.subjectConsented !== true) missing.push('subjectConsented (the subject consented to collection and to sharing with us)');
  if (c?.lawfulSource !== true) missing.push('lawfulSource (the source is lawful and compliant)');
  if (c?.liabilityAccepted !== true) missing.push('liabilityAccepted (the source bears legal responsibility for its violations)');
  if (!c?.signedAt) missing.push('signedAt');
  return missing;
}

/** Splits received categories into usable now and awaiting the subject's explicit confirmation. */
export function splitBySensitivity(categories: DataCategory[]): { usable: DataCategory[]; awaitingConfirmation: DataCategory[] } {
  return {
    usable: categories.filter((c) => !isSensitive(c)),
    awaitingConfirmation: categories.filter((c) => isSensitive(c)),
  };
}

/** Item states: usable, waiting for the subject (sensitive), or declined by the subject (then erased). */
export type ItemStatus = 'usable' | 'awaiting-confirmation' | 'declined';

/**
 * Applies the subject's answer to the items awaiting confirmation: confirmed categories become usable,
 * declined ones are marked declined (their data is erased by the caller). Categories not awaiting
 * confirmation are ignored. Returns the new statuses and what changed.
 */
export function applyConfirmation(
  items: { category: DataCategory; status: ItemStatus }[],
  answer: { confirm: DataCategory[]; decline: DataCategory[] },
): { items: { category: DataCategory; status: ItemStatus }[]; confirmed: DataCategory[]; declined: DataCategory[] } {
  const confirmed: DataCategory[] = [];
  const declined: DataCategory[] = [];
  const next = items.map((i) => {
    if (i.status !== 'awaiting-confirmation') return i;
    if (answer.decline.includes(i.category)) { declined.push(i.category); return { ...i, status: 'declined' as const }; }
    if (answer.confirm.includes(i.category)) { confirmed.push(i.category); return { ...i, status: 'usable' as const }; }
    return i;
  });
  return { items: next, confirmed, declined };
}
