import { rectifyConfusion } from 'unicode-confusables';

/** What a profile change asks for: a value sets or corrects the field, null removes it. */
export type ProfilePatch = Record<string, string | null>;

// C0 and C1 controls, DEL, and the bidirectional overrides that let text disguise itself.
const CONTROL = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/u;

export type FieldVerdict = { ok: true; value: string } | { ok: false; reason: string };

// What shows nothing on its own: spaces of any kind and format characters (zero-width space, joiners …).
const INVISIBLE = /[\p{Z}\p{Cf}\s]/gu;

/**
 * Normalizes a free-text profile value (policy 2.4.1(1)ii): Unicode NFC, surrounding spaces trimmed;
 * refuses control characters and direction overrides, and values that are empty or show nothing (only
 * spaces and zero-width characters; send null to remove a field).
 */
export function normalizeText(value: string, maxLength: number): FieldVerdict {
  if (CONTROL.test(value)) return { ok: false, reason: 'must not contain control characters' };
  const v = value.normalize('NFC').trim();
  if (!v.replace(INVISIBLE, '')) return { ok: false, reason: 'must not be empty or invisible; send null to remove it' };
  if ([...v].length > maxLength) return { ok: false, reason: `must be at most ${maxLength} characters` };
  return { ok: true, value: v };
}

/** Account names: 3–32 letters, digits, '_', '.', '-', starting with a letter or digit; unique ignoring case. */
export function normalizeAccountName(value: string): FieldVerdict {
  const v = normalizeText(value, 32);
  if (!v.ok) return v;
  if (!/^[\p{L}\p{N}][\p{L}\p{N}_.-]{2,31}$/u.test(v.value)) {
    return { ok: false, reason: 'use 3–32 letters, digits, "_", "." or "-", starting with a letter or digit' };
  }
  return v;
}

/**
 * The version of `accountNameKey`, raised with any change to it (reservations are then moved to the
 * new key at start-up, see rekeyAccountNames): 1 case-folded NFKC, 2 its UTS #39 skeleton, 3 also
 * without accents and with i and l as one letter.
 */
export const ACCOUNT_NAME_KEY_VERSION = 3;

/**
 * The key under which an account name is reserved, so that look-alikes collide: the NFKC form, case
 * folded, then its UTS #39 skeleton (each character replaced by its prototype in Unicode's
 * confusables.txt, through unicode-confusables), without accents (combining marks), and with i and l
 * as one letter. "admin" and "аdmin" with a Cyrillic а, "paypal", "paypa1", "paypaI", "paypaĺ" and
 * "paypaӏ", "m" and "rn" share a key. i and l are folded together because case is folded first: a
 * capital I, which many fonts draw as an l, becomes an i (and the package's data, Unicode 10, maps the
 * Cyrillic palochka ӏ to i). The price is that "mail" and "mall" share a key too: a name refused for
 * looking like another, never a look-alike let through.
 */
export function accountNameKey(name: string): string {
  return rectifyConfusion(name.normalize('NFKC').toLowerCase().normalize('NFD')).normalize('NFD').replace(/\p{Mn}/gu, '').toLowerCase().replaceAll('i', 'l');
}

/**
 * Splits a validated patch into `$set` and `$unset` of `profile.<field>` paths and the list of
 * changed fields (for the audit record and the contact-changed event). Fields equal to their current
 * value are not changes.
 */
export function planProfileUpdate(current: Record<string, string | undefined>, patch: Record<string, string | null>) {
  const set: Record<string, string> = {};
  const unset: Record<string, ''> = {};
  const changed: string[] = [];
  for (const [field, value] of Object.entries(patch)) {
    if (value === null) {
      if (current[field] !== undefined) { unset[`profile.${field}`] = ''; changed.push(field); }
    } else if (current[field] !== value) {
      set[`profile.${field}`] = value;
      changed.push(field);
    }
  }
  return { set, unset, changed };
}
