import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';

export type PhoneResult =
  | { ok: true; e164: string; region: string }
  | { ok: false; reason: string };

/** Characters a person may type around the digits of a number: spaces, dashes, dots, brackets. */
const DECORATION = /[\s\-.()\u00a0\u3000]/g;

/**
 * Parses a mobile number as a person may type it and returns it in E.164, so that `+86 138 0013 8000`,
 * `0086 13800138000`, `13800138000` and the full-width `＋８６ １３８…` are one account (policy
 * 2.4.1(1)i: registration requires a mobile phone number). Full-width forms are folded with NFKC, then
 * libphonenumber-js (full metadata) parses with the first allowed region as default. Only valid
 * **mobile** numbers of an allowed region pass.
 * @param regions allowed ISO 3166-1 alpha-2 regions, the first being the default (config PHONE_REGIONS).
 * @returns `{ok: false, reason}` with a reason the user can act on; never throws.
 */
export function parseMobileNumber(input: string, regions: readonly string[]): PhoneResult {
  if (typeof input !== 'string' || input.length === 0 || input.length > 40) {
    return { ok: false, reason: 'Enter a mobile phone number (up to 40 characters)' };
  }
  const folded = input.normalize('NFKC').replace(DECORATION, '');
  if (!/^\+?[0-9]{3,20}$/.test(folded)) {
    return { ok: false, reason: 'A mobile phone number has only digits, optionally a leading + and spaces or dashes' };
  }
  const parsed = parsePhoneNumberFromString(folded, (regions[0] ?? 'CN') as CountryCode);
  if (!parsed || !parsed.isValid()) return { ok: false, reason: 'This is not a valid phone number' };
  const region = parsed.country ?? '';
  if (!regions.includes(region)) {
    return { ok: false, reason: `Numbers from this region cannot register; allowed: ${regions.join(', ')}` };
  }
  const type = parsed.getType();
  if (type !== 'MOBILE' && type !== 'FIXED_LINE_OR_MOBILE') {
    return { ok: false, reason: 'This is not a mobile number; a mobile number is needed to receive verification codes' };
  }
  return { ok: true, e164: parsed.number, region };
}

/** Shows a number with all but its last four digits hidden (for notices and listings). */
export function maskPhone(e164: string): string {
  return e164.length <= 4 ? '****' : `${e164.slice(0, 3)}****${e164.slice(-4)}`;
}
