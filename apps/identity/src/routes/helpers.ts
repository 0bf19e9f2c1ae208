import type { Config } from '../config.js';
import { parseMobileNumber } from '../domain/phone.js';
import { IdentityErrors } from '../errors.js';

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
