/**
 * Storage location and cross-border transfers (policy 5.3; PIPL art. 38–40).
 *
 * PI collected in the home region (config `HOME_REGION`, default `CN`, mainland China) stays there;
 * a recipient in any other country or region receives it only on a 5.3 ground. Regions are ISO 3166-1
 * alpha-2 codes compared exactly, so Hong Kong (`HK`), Macao (`MO`) and Taiwan (`TW`) are outside
 * mainland China (`CN`), as in PIPL practice (CAC cross-border measures treat them as outbound).
 */

/** Codes that denote parts of mainland China in other registries; normalized to `CN`. */
const ALIASES: Record<string, string> = { CHN: 'CN' };

/** Regions that PIPL practice treats as outside mainland China although ISO lists them separately. */
export const OUTSIDE_MAINLAND = ['HK', 'MO', 'TW'] as const;

/** Upper-cases and normalizes a region code (`cn` → `CN`). */
export function normalizeRegion(code: string): string {
  const upper = code.trim().toUpperCase();
  return ALIASES[upper] ?? upper;
}

/**
 * True when sending PI to a recipient in `country` is a cross-border transfer from `home` (policy 5.3).
 * Exact comparison of normalized codes: HK, MO and TW are cross-border from CN.
 */
export function isCrossBorder(country: string, home: string): boolean {
  return normalizeRegion(country) !== normalizeRegion(home);
}
