import type { Channel, DataCategory, ErasureScope, LegalBasis } from '@pipp/contracts';
import { createHmac } from 'node:crypto';

/**
 * What the incident service holds about a subject, by data category (contracts DATA_CATEGORIES):
 * - `contact-channel` / `phone-number`: the contact directory, addresses on queued letters, local
 *   SMS/telephone sink records;
 * - `support-report`: user reports (texts and replies);
 * - `notification-record`: deliveries of notices and the lists of subjects affected by incidents.
 */
export type Holding = 'contacts' | 'reports' | 'deliveries';

const HOLDING_CATEGORIES: Record<Holding, readonly DataCategory[]> = {
  contacts: ['contact-channel', 'phone-number'],
  reports: ['support-report'],
  deliveries: ['notification-record'],
};

/** The contact channels of each contact category. */
const CONTACT_CHANNELS: Record<'contact-channel' | 'phone-number', readonly Channel[]> = {
  'contact-channel': ['email', 'push', 'letter'],
  'phone-number': ['sms', 'telephone'],
};
type ContactCategory = keyof typeof CONTACT_CHANNELS;

export interface ErasurePlanItem {
  holding: Holding;
  /**
   * erase: delete; anonymize: drop every text and the subject link; pseudonymize-keep: keep only a
   * pseudonymous reference because the law requires the record; isolate: a legal hold from the
   * request keeps it, isolated from any further use, until `purgeAt` (contacts: moved out of the
   * contact directory, so no notice reaches them).
   */
  action: 'erase' | 'anonymize' | 'pseudonymize-keep' | 'isolate';
  /**
   * Contacts only: the channels to erase, or to isolate. `all` (an account erasure) also records a
   * tombstone so late contact events are ignored; a list (a category erasure) leaves the rest, and
   * identity's next contact event stays authoritative.
   */
  channels?: 'all' | Channel[];
  /** Contacts isolated under a hold: the held category (its channels are `channels`). */
  category?: DataCategory;
  legalBasis?: LegalBasis;
  purgeAt?: Date;
  reason?: string;
}

/**
 * Plans the incident service's part of an erasure request (policy 4.1, 4.2; PIPL art. 47):
 * - only holdings in `scope` (all for `account`);
 * - a legal hold of the request on a holding's category isolates it with the hold's basis and date
 *   (contacts per category: a hold on `contact-channel` isolates e-mail, push and letter addresses,
 *   and the phone number is erased unless held too; isolated items come before the erasure);
 * - otherwise contacts are erased, report texts anonymized (the report's existence, kind and dates
 *   stay as statistics, with no link to the subject), and notice deliveries erased — except those of
 *   security-incident notices and incident affected-subject lists, which PIPL art. 57 and the
 *   regulator's review require us to keep as evidence: they keep only a pseudonymous reference,
 *   until `now + incidentRecordDays`.
 */
export function planErasure(input: {
  scope: ErasureScope;
  legalHolds: readonly { category: DataCategory; legalBasis: LegalBasis; purgeAt: string }[];
  now: Date;
  incidentRecordDays: number;
}): ErasurePlanItem[] {
  const inScope = (h: Holding) => input.scope.kind === 'account' || HOLDING_CATEGORIES[h].some((c) => (input.scope as { categories: DataCategory[] }).categories.includes(c));
  const holdFor = (h: Holding) => input.legalHolds.find((l) => HOLDING_CATEGORIES[h].includes(l.category));
  const plan: ErasurePlanItem[] = [];
  for (const holding of ['contacts', 'reports', 'deliveries'] as const) {
    if (!inScope(holding)) continue;
    if (holding === 'contacts') {
      const free: Channel[] = [];
      for (const category of Object.keys(CONTACT_CHANNELS) as ContactCategory[]) {
        if (input.scope.kind !== 'account' && !input.scope.categories.includes(category)) continue;
        const hold = input.legalHolds.find((l) => l.category === category);
        if (hold) plan.push({ holding, action: 'isolate', category, channels: [...CONTACT_CHANNELS[category]], legalBasis: hold.legalBasis, purgeAt: new Date(hold.purgeAt), reason: 'legal hold of the erasure request' });
        else free.push(...CONTACT_CHANNELS[category]);
      }
      if (input.scope.kind === 'account') plan.push({ holding, action: 'erase', channels: 'all' });
      else if (free.length) plan.push({ holding, action: 'erase', channels: free });
      continue;
    }
    const hold = holdFor(holding);
    if (hold) {
      plan.push({ holding, action: 'isolate', legalBasis: hold.legalBasis, purgeAt: new Date(hold.purgeAt), reason: 'legal hold of the erasure request' });
      continue;
    }
    if (holding === 'reports') plan.push({ holding, action: 'anonymize' });
    else {
      plan.push({ holding, action: 'erase' });
      plan.push({
        holding, action: 'pseudonymize-keep', legalBasis: 'legal-obligation',
        purgeAt: new Date(input.now.getTime() + input.incidentRecordDays * 86_400_000),
        reason: 'PIPL art. 57: evidence that affected subjects of a security incident were notified; pseudonymous reference only',
      });
    }
  }
  return plan;
}

/**
 * A stable pseudonymous reference to a subject (HMAC-SHA256 with the service's secret key,
 * config INCIDENT_PSEUDONYM_KEY): links the kept incident records of one person together without
 * naming them; not reversible without the key.
 */
export function pseudonymOf(subjectId: string, key: string): string {
  return `ps_${createHmac('sha256', key).update(subjectId).digest('base64url').slice(0, 27)}`;
}

/**
 * Stores a subject's new record unless their account was erased (policy 4.1, 4.2: nothing of an erased
 * subject may remain). Race-free with `eraseSubject`, which records the tombstone before it erases:
 * the record is written first and the tombstone checked after, so a record written before the erasure
 * is erased by it, and one written after it sees the tombstone and is removed again here.
 * Returns false (nothing kept) when the subject was erased.
 */
export async function storeUnlessErased(
  isErased: () => Promise<unknown>,
  store: () => Promise<unknown>,
  undo: () => Promise<unknown>,
): Promise<boolean> {
  await store();
  if (!await isErased()) return true;
  await undo();
  return false;
}
