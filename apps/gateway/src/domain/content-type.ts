/**
 * Request bodies the gateway forwards: JSON only (every service's API is JSON). A Content-Type is
 * normalized before it is judged, so spelling variants (case, spaces, tabs, parameters) cannot make a
 * body skip parsing here or validation upstream: the gateway parses the body itself and forwards the
 * canonical JSON with `application/json; charset=utf-8`.
 */
export type BodyType = { ok: true; mediaType: string } | { ok: false; reason: string };

const TOKEN = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/;

/**
 * Judges a Content-Type header value: accepts `application/json` and `application/<x>+json` in any
 * case and surrounding whitespace, with no parameter but `charset=utf-8` (quoted or not, any case).
 */
export function judgeContentType(header: string | undefined): BodyType {
  if (header === undefined || header.trim() === '') return { ok: false, reason: 'A request body needs Content-Type: application/json' };
  const [rawType, ...params] = header.split(';');
  const mediaType = rawType!.trim().toLowerCase();
  if (!TOKEN.test(mediaType)) return { ok: false, reason: 'The Content-Type header is malformed' };
  if (mediaType !== 'application/json' && !(mediaType.startsWith('application/') && mediaType.endsWith('+json'))) {
    return { ok: false, reason: 'Unsupported content type; send application/json' };
  }
  for (const param of params) {
    if (param.trim() === '') continue;
    const eq = param.indexOf('=');
    const name = param.slice(0, eq < 0 ? undefined : eq).trim().toLowerCase();
    const value = eq < 0 ? '' : param.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase();
    if (name !== 'charset' || (value !== 'utf-8' && value !== 'utf8')) {
      return { ok: false, reason: 'Only UTF-8 JSON is accepted (charset=utf-8)' };
    }
  }
  return { ok: true, mediaType };
}

/** Deepest nesting of objects and arrays a JSON body may have (no request schema needs more than a few). */
export const MAX_JSON_DEPTH = 64;

/**
 * True when a parsed JSON value nests objects/arrays deeper than `limit` levels. Iterative, so a
 * hostile body (thousands of levels, which would overflow the stack when re-serialized and forwarded)
 * is judged without recursion.
 */
export function nestsDeeperThan(value: unknown, limit = MAX_JSON_DEPTH): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}
