import type { Role } from '@pipp/contracts';
import { checkSharingBasis, type ClaimedBasis, type Refusal } from './sharing.js';

/**
 * The grounds of public disclosure (policy 3.3; PIPL art. 25):
 * - `3.3.1` with the subject's express consent (asked of the consent service: purpose
 *   `public-disclosure`, `disclosure: true`) or the subject's active choice (the subject's own request);
 * - `3.3.2` an operator's or DPO's decision about a violation of laws or serious violation of our
 *   agreements, or to protect users' or the public's safety: it references the violation and the
 *   measures taken, and rests on a law (a 3.4 basis with evidence) or the subject's consent.
 */
export type DisclosureGround =
  | { ground: '3.3.1'; via: 'express-consent' | 'active-choice' }
  | {
    ground: '3.3.2';
    violationRef: string;
    violation: string;
    measuresTaken: string[];
    basis?: ClaimedBasis;
  };

/** How a disclosure request is decided: by the request itself, or by a consent decision. */
export type DisclosureCheck =
  | { ok: true; needs: 'nothing' }
  | { ok: true; needs: 'consent-decision'; basis?: ClaimedBasis };

/**
 * Checks who may disclose on which ground before anything is asked of the consent service.
 * Active choice is only the subject acting on their own data; 3.3.2 is only for operators and the DPO
 * and needs the violation reference, its description and at least one measure taken.
 */
export function checkDisclosure(ground: DisclosureGround, actor: { role: Role; sub: string }, subjectId: string): DisclosureCheck | Refusal {
  if (ground.ground === '3.3.1') {
    if (ground.via === 'active-choice') {
      if (actor.role !== 'subject' || actor.sub !== subjectId) {
        return { ok: false, kind: 'ineligible', clause: '3.3.1', message: 'an active choice is made by the data subject themselves; others need the subject\'s express consent' };
      }
      return { ok: true, needs: 'nothing' };
    }
    return { ok: true, needs: 'consent-decision' };
  }
  if (actor.role !== 'operator' && actor.role !== 'dpo') {
    return { ok: false, kind: 'ineligible', clause: '3.3.2', message: 'a disclosure about a violation is an operator\'s or the DPO\'s decision' };
  }
  if (!ground.violationRef.trim() || !ground.violation.trim()) {
    return { ok: false, kind: 'incomplete', clause: '3.3.2', message: 'a 3.3.2 disclosure references the violation (violationRef) and describes it' };
  }
  if (!ground.measuresTaken.some((m) => m.trim())) {
    return { ok: false, kind: 'incomplete', clause: '3.3.2', message: 'a 3.3.2 disclosure states the measures taken' };
  }
  const basisOk = checkSharingBasis(ground.basis);
  if (!basisOk.ok) return basisOk;
  return ground.basis ? { ok: true, needs: 'consent-decision', basis: ground.basis } : { ok: true, needs: 'consent-decision' };
}
