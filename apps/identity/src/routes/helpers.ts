import type { FastifyInstance } from 'fastify';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config.js';
import { parseMobileNumber } from '../domain/phone.js';
import { IdentityErrors } from '../errors.js';
import type { Account } from '../plugins/models.js';

/** Allowed phone regions from config `PHONE_REGIONS` (first = default region). */
export const regionsOf = (config: Config) => config.PHONE_REGIONS.split(',');

/**
 * Parses a typed mobile number into E.164 (policy 2.4.1(1)i).
 * @throws PIPP_INVALID_PHONE (400) with the field and a reason the user can act on.
 */
export function requirePhone(input: string, config: Config, field = 'phone'): string {
  const parsed = parseMobileNumber(input, regionsOf(config));
  if (!parsed.ok) {
    throw IdentityErrors.invalidPhone(`${field}: ${parsed.reason}`, { clause: '2.4.1(1)i', details: [{ path: `/body/${field}`, message: parsed.reason }] });
  }
  return parsed.e164;
}

/**
 * How long after a registration that granted `profile` a refusal may only mean that consent has not
 * yet recorded the grant (ms; the registration event's way there takes about 100 ms), and the waits
 * before asking again in that case (ms, 3 s in all).
 */
const GRANT_IN_FLIGHT_MS = 10_000;
const GRANT_RETRIES_MS = [100, 200, 400, 800, 1500];

/** The account fields requireProfileConsent reads. */
export type ProfileConsentHolder = Pick<Account, '_id' | 'profileGrantedAt' | 'profileErasedAt'>;

/** True while the registration's grant of `profile` may still be on its way to consent (and nothing erased the profile since). */
function grantInFlight(account: ProfileConsentHolder, now: number): boolean {
  const granted = account.profileGrantedAt?.getTime();
  if (granted === undefined || now - granted >= GRANT_IN_FLIGHT_MS) return false;
  return !(account.profileErasedAt && account.profileErasedAt.getTime() >= granted);
}

/**
 * Refuses to store optional profile information of a subject (policy 2.4.1(1)ii: picture, account name,
 * nickname, login password …) unless the consent service allows purpose `profile` for `categories`
 * now (decision API through @pipp/consent-client; a registrant who gave a nickname or password granted
 * it then). Removing such information never needs consent. Just after such a registration, a refusal
 * is asked again for up to 3 s: consent records the grant from the registration event, which may not
 * have reached it yet.
 * @throws PIPP_CONSENT_REQUIRED (403, clause 2.4.1(1)ii, or VI while a rights-restricting policy update
 * awaits the subject's acceptance); PIPP_FUNCTION_SHUT_DOWN (403, 2.4.2(5)); PIPP_UNAVAILABLE (503)
 * when consent cannot answer (fails closed).
 */
export async function requireProfileConsent(app: FastifyInstance, account: ProfileConsentHolder, categories: ('profile' | 'credentials')[]): Promise<void> {
  const ask = () => app.consent.decide({ subjectId: account._id, service: 'identity', purpose: 'profile', categories, functionId: 'profile' });
  let decision = await ask();
  for (const ms of GRANT_RETRIES_MS) {
    if (decision.allowed || decision.clause === '2.4.2(5)' || !grantInFlight(account, Date.now())) break;
    await sleep(ms);
    decision = await ask();
  }
  if (decision.allowed) return;
  if (decision.clause === '2.4.2(5)') throw IdentityErrors.functionShutDown(decision.reason, { clause: '2.4.2(5)' });
  throw IdentityErrors.consentRequired(`Optional profile information is kept only with your consent to the optional profile: ${decision.reason}`, { clause: decision.clause === 'VI' ? 'VI' : '2.4.1(1)ii' });
}

/**
 * The filter under which optional profile data (or a password) is written after its consent check:
 * only onto the account as read, so that a withdrawal of the `profile` consent that erased the profile
 * since then wins (`profileErasedAt`, set by eraseOptionalProfile; policy 2.4.1(1)ii).
 */
export const notErasedSince = (read: { profileErasedAt?: Date | undefined } | null | undefined) => ({ profileErasedAt: read?.profileErasedAt ?? null });

/** 403 PIPP_CONSENT_REQUIRED (2.4.1(1)ii) for a write that `notErasedSince` stopped: `what` was not stored. */
export const withdrawnMeanwhile = (what: string) =>
  IdentityErrors.consentRequired(`Your consent to the optional profile was withdrawn meanwhile; ${what} was not stored`, { clause: '2.4.1(1)ii' });
