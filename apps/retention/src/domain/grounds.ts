import type { ErasureGround } from '@pipp/contracts';

/** Who asks for an erasure (contracts `privacy.erasure.requested` origin). */
export type ErasureOrigin = 'subject' | 'operator' | 'expiry-sweep' | 'business-shutdown';

/**
 * The grounds each origin may invoke:
 * - a data subject: the right to delete (4.1) or one of the grounds of 4.2.1–4.2.5;
 * - an operator (acting for the company or on the subject's behalf): those, or the end of a storage
 *   period (5.1);
 * - an expiry sweep: the storage period ended (5.1, 4.2.5);
 * - a business shutdown: 2.4.2(5).
 */
export const ORIGIN_GROUNDS: Record<ErasureOrigin, readonly ErasureGround[]> = {
  subject: ['4.1', '4.2.1', '4.2.2', '4.2.3', '4.2.4', '4.2.5'],
  operator: ['4.1', '4.2.1', '4.2.2', '4.2.3', '4.2.4', '4.2.5', '5.1'],
  'expiry-sweep': ['5.1', '4.2.5'],
  'business-shutdown': ['2.4.2(5)'],
};

/** True when `origin` may ask for an erasure on `ground`. */
export function groundAdmissible(origin: ErasureOrigin, ground: ErasureGround): boolean {
  return ORIGIN_GROUNDS[origin].includes(ground);
}
