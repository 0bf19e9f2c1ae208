/**
 * The URL convention of the public API (docs/architecture.md "HTTP"), as pure functions: which
 * service a path belongs to and who may call it.
 *
 * - `/v1/<service>/public/…`, `/v1/<service>/openapi.json`, `/v1/identity/.well-known/jwks.json`:
 *   anonymous (basic services a visitor may use without an account, policy 2.4.1(1));
 * - `/v1/<service>/subjects/:subjectId/…`: one data subject's own data (policy 4.1, 5.4);
 * - `/v1/<service>/admin/…`: staff functions (operators, the DPO);
 * - anything else under `/v1/<service>/`: any valid token, narrowed by the roles the route declares.
 */

/** Who may call a path, by its place in the URL convention. */
export type PathClass = 'public' | 'document' | 'subject' | 'admin' | 'protected';

export interface ClassifiedPath {
  /** The upstream service (`identity`, `consent` …). */
  service: string;
  /** Decoded path segments after `/v1/<service>/`. */
  rest: string[];
  cls: PathClass;
  /** The data subject whose data the path names (`subject` class only). */
  subjectId?: string;
  /** The path without its query string, exactly as received (what is forwarded). */
  path: string;
}

export class PathError extends Error {
  override readonly name = 'PathError';
}

/** Subject ids are opaque ids (contracts `SubjectId`): never PI, safe in audit records. */
const SUBJECT_ID = /^[A-Za-z0-9_-]{1,64}$/;
const FORBIDDEN_DECODED = /[/\\\p{Cc}]/u;

/**
 * Splits and decodes a request path strictly, so that the gateway classifies exactly what the
 * upstream will route: percent-decoding errors, encoded slashes or backslashes, control characters,
 * `.`/`..` segments and empty segments (`//`) are refused rather than normalized, since a proxy and
 * its upstream normalizing differently is how path-based access rules get bypassed.
 * @throws PathError with a message safe to show.
 */
export function splitPath(rawPath: string): string[] {
  if (!rawPath.startsWith('/')) throw new PathError('The path must start with /');
  const raw = rawPath.slice(1).split('/');
  return raw.map((segment, i) => {
    if (segment === '' && i < raw.length - 1) throw new PathError('The path has an empty segment');
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw new PathError('The path has an invalid percent-encoding');
    }
    if (FORBIDDEN_DECODED.test(decoded)) throw new PathError('The path has an encoded slash, backslash or control character');
    if (decoded === '.' || decoded === '..') throw new PathError('The path has a dot segment');
    return decoded;
  });
}

/**
 * Classifies a request path of the public API (without query string).
 * @returns undefined when the path is not under `/v1/<service>/` for one of `services`.
 * @throws PathError for a malformed path (see `splitPath`) or a subject path whose id is not a valid
 * subject id.
 */
export function classifyPath(path: string, services: ReadonlySet<string>): ClassifiedPath | undefined {
  const segments = splitPath(path);
  if (segments.length < 3 || segments[0] !== 'v1' || !services.has(segments[1]!)) return undefined;
  const service = segments[1]!;
  const rest = segments.slice(2);
  const head = rest[0];
  if (head === 'public') return { service, rest, cls: 'public', path };
  if (rest.length === 1 && head === 'openapi.json') return { service, rest, cls: 'document', path };
  if (service === 'identity' && rest.length === 2 && head === '.well-known' && rest[1] === 'jwks.json') return { service, rest, cls: 'document', path };
  if (head === 'subjects' && rest.length >= 2) {
    const subjectId = rest[1]!;
    if (!SUBJECT_ID.test(subjectId)) throw new PathError('The subject id in the path is not a valid subject id');
    return { service, rest, cls: 'subject', subjectId, path };
  }
  if (head === 'admin') return { service, rest, cls: 'admin', path };
  return { service, rest, cls: 'protected', path };
}

/** Word-like segments that name a resource (kept in audit records); anything else is an id. */
const RESOURCE_WORD = /^(?:[a-z][a-z0-9-]{0,63}|\.well-known|openapi\.json|jwks\.json)$/;

/**
 * A path safe to keep in an audit record when the upstream declared no route template for it: the
 * subject id becomes `{subjectId}` and every segment that is not a lower-case resource word becomes
 * `{id}`, so phone numbers, e-mail addresses or other values in a path never reach the audit trail.
 */
export function redactedPath(c: ClassifiedPath): string {
  const rest = c.rest.map((s, i) => {
    if (c.cls === 'subject' && i === 1) return '{subjectId}';
    return RESOURCE_WORD.test(s) ? s : '{id}';
  });
  return `/v1/${c.service}/${rest.join('/')}`;
}
