/**
 * Characters no request value may carry, in any field of any service: C0 and C1 controls other than tab
 * and line breaks, DEL, the bidirectional embeddings, overrides and isolates that let text disguise
 * itself (U+202A–U+202E, U+2066–U+2069, "Trojan Source"), unpaired surrogates (UTF-16 halves that
 * MongoDB stores as U+FFFD, silently changing the value), and U+FFFD itself: what a body that is not
 * valid UTF-8 decodes to (a helper's `\xff\xfe` was stored as "��"). Breaker helpers stored NUL, a
 * right-to-left override and a lone surrogate in recipients' legal names, incident texts and disclosure
 * channels, shown on public lists; identity alone refused them.
 */
const HIDDEN_CLASS = '[\\p{Cc}\\p{Cs}\\u202a-\\u202e\\u2066-\\u2069\\ufffd]';
const HIDDEN = new RegExp(`(?![\\t\\n\\r])${HIDDEN_CLASS}`, 'u');
const EACH_HIDDEN = new RegExp(HIDDEN_CLASS, 'gu');
// The same characters, and any surrogate (paired ones too, e.g. emoji): a test three times as fast
// without the `u` flag, so that HIDDEN runs only on the few strings this finds.
// eslint-disable-next-line no-control-regex -- the control characters are what it looks for
const CANDIDATE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffd]/;
const hidden = (s: string) => CANDIDATE.test(s) && HIDDEN.test(s);

const HIDDEN_MESSAGE = 'must not contain control characters, direction overrides or unpaired surrogates';
const NON_FINITE_MESSAGE = 'must be a number JSON can carry (this one overflows: at most about 1.8e308)';

/**
 * The first value in a request's `value` (body or query string) that no field of any service accepts,
 * as `{ path, message }` (`path` a JSON Pointer under `root`, e.g. `/body/a/0`), or null:
 * - a string, object keys included, that carries a hidden character (above);
 * - a number that is not finite: a literal such as `1e400` parses to Infinity, which MongoDB stores as
 *   such and every answer then shows as `null` (the gateway forwarded it as `null`: a value lost
 *   without an error, found by a fresh-clone trial).
 * Walks at most `maxDepth` levels (bodies are bounded in size and nesting before this runs). On every
 * request of every service: the path is built only for a hit (building it for each key cost most of a
 * microsecond per small body).
 */
export function unacceptableValue(value: unknown, root: string, maxDepth = 64): { path: string; message: string } | null {
  const at = unacceptableAt(value, maxDepth);
  if (!at) return null;
  const kind = at.pop() as 'hidden' | 'non-finite';
  return {
    path: root + at.map((k) => `/${escapeHidden(String(k).replace(/~/g, '~0').replace(/\//g, '~1'))}`).join(''),
    message: kind === 'hidden' ? HIDDEN_MESSAGE : NON_FINITE_MESSAGE,
  };
}

/** The path to the first unacceptable value, its kind last, or null. */
function unacceptableAt(value: unknown, depth: number): (string | number)[] | null {
  if (typeof value === 'string') return hidden(value) ? ['hidden'] : null;
  if (typeof value === 'number') return Number.isFinite(value) ? null : ['non-finite'];
  if (value === null || typeof value !== 'object' || depth <= 0 || ArrayBuffer.isView(value)) return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const at = unacceptableAt(value[i], depth - 1);
      if (at) return [i, ...at];
    }
    return null;
  }
  for (const key of Object.keys(value)) {
    if (hidden(key)) return [key, 'hidden'];
    const at = unacceptableAt((value as Record<string, unknown>)[key], depth - 1);
    if (at) return [key, ...at];
  }
  return null;
}

/** `text` with its hidden characters written as `\uXXXX`: for echoing a client's key or value in an error. */
export function escapeHidden(text: string): string {
  return text.replace(EACH_HIDDEN, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
