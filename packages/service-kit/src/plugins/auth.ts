import fastifyJwt from '@fastify/jwt';
// Re-exported so that the emitted declarations reference @fastify/jwt: services then see
// `request.user` (declared by @fastify/jwt) without depending on it themselves.
export type { FastifyJWT } from '@fastify/jwt';
import { ROLES, type Role } from '@pipp/contracts';
import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import buildGetJwks from 'get-jwks';
import { Errors } from '../errors.js';

/**
 * Claims of an access token signed by the identity service (DESIGN.md security model).
 * `iat` and `exp` are whole NumericDate seconds. A subject-wide revocation rejects tokens whose
 * `iat` × 1000 < `notBefore` (ms), so a token issued in the same second as the revocation is rejected
 * too (sign in again); a session revocation (`sid`) is exact, as every session has its own id.
 */
export interface AccessTokenClaims {
  /** The data subject's id, an operator's or DPO's account id, or a service name. */
  sub: string;
  role: Role;
  /** Session the token belongs to (absent for service tokens). */
  sid?: string;
  iss: string;
  aud: string | string[];
  iat: number;
  exp: number;
  jti?: string;
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessTokenClaims;
    user: AccessTokenClaims;
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler: requires a valid, unrevoked access token; sets `request.user`. Answers 401 otherwise. */
    authenticate: preHandlerAsyncHookHandler;
    /** preHandler: `authenticate`, then 403 unless the token's role is one of `roles`. */
    requireRole(...roles: Role[]): preHandlerAsyncHookHandler;
    /**
     * preHandler: `authenticate`, then a subject may only reach their own data: `request.params[param]`
     * must equal the token's `sub`. Tokens with one of `privileged` roles may reach anyone's.
     */
    requireSubject(param?: string, privileged?: Role[]): preHandlerAsyncHookHandler;
    revocations: RevocationList;
  }
}

/**
 * Tokens revoked before their expiry, from `privacy.session.revoked` events: per subject (every token
 * issued before `notBefore`) and per session. Entries are dropped once every token they could affect
 * has expired.
 */
export class RevocationList {
  private readonly subjects = new Map<string, number>();
  private readonly sessions = new Map<string, number>();

  constructor(private readonly maxTokenLifetimeMs: number) {}

  /** Records a revocation; `sessionId` narrows it to one session. `notBefore` is ISO 8601. */
  apply(r: { subjectId: string; sessionId?: string | undefined; notBefore: string }): void {
    const at = Date.parse(r.notBefore);
    const map = r.sessionId ? this.sessions : this.subjects;
    const key = r.sessionId ?? r.subjectId;
    if ((map.get(key) ?? 0) < at) map.set(key, at);
    this.prune();
  }

  /** True when a token with these claims was issued before a revocation that covers it. */
  isRevoked(claims: Pick<AccessTokenClaims, 'sub' | 'sid' | 'iat'>): boolean {
    const issuedMs = claims.iat * 1000;
    const bySubject = this.subjects.get(claims.sub);
    if (bySubject !== undefined && issuedMs < bySubject) return true;
    const bySession = claims.sid ? this.sessions.get(claims.sid) : undefined;
    return bySession !== undefined && issuedMs < bySession;
  }

  private prune() {
    const horizon = Date.now() - this.maxTokenLifetimeMs;
    for (const map of [this.subjects, this.sessions]) for (const [k, v] of map) if (v < horizon) map.delete(k);
  }
}

export interface AuthOptions {
  issuer: string;
  audience: string;
  /** identity's JWKS URL (other services). */
  jwksUrl?: string;
  /** In-process key lookup by `kid` (identity itself): returns a PEM public key. */
  publicKey?: (kid: string | undefined) => Promise<string>;
  /** Accepted signing algorithms (default ES256 only: no `none`, no HMAC). */
  algorithms?: string[];
  /** Upper bound of access-token lifetime in ms, to prune the revocation list (default 1 h). */
  maxTokenLifetimeMs?: number;
}

/**
 * Caches a key lookup per `kid` for `ttlMs` (successful lookups only, at most 100 kids). get-jwks
 * converts the JWK to PEM on every call (~7 ms of CPU for an EC key), which would otherwise be paid on
 * every request; a key's material never changes under its kid, and the TTL (the JWKS cache's own)
 * bounds how long a key identity stopped publishing is still accepted.
 * A kid not in the cache costs a fetch of identity's key set, so those fetches draw on a budget of
 * `burst` that refills by one every `refillMs`: forged tokens with made-up kids (each fetched the key
 * set; a breaker helper's 40 requests made 40 fetches) cost identity at most `burst` fetches at once
 * and one per `refillMs` after that. A key rotated in during such a flood is accepted once the budget
 * allows a fetch for it.
 */
export function cachedByKid(lookup: (kid: string | undefined) => Promise<string>, ttlMs: number, budget = { burst: 5, refillMs: 1000 }) {
  const cache = new Map<string, { pem: Promise<string>; until: number }>();
  let tokens = budget.burst;
  let refilledAt = Date.now();
  return (kid: string | undefined): Promise<string> => {
    const key = kid ?? '';
    const hit = cache.get(key);
    if (hit && hit.until > Date.now()) return hit.pem;
    const now = Date.now();
    tokens = Math.min(budget.burst, tokens + (now - refilledAt) / budget.refillMs);
    refilledAt = now;
    if (tokens < 1) return Promise.reject(new Error(`no signing key ${key} known, and the key set was fetched too often just now`));
    tokens -= 1;
    const pem = lookup(kid);
    if (cache.size >= 100) cache.delete(cache.keys().next().value as string);
    cache.set(key, { pem, until: now + ttlMs });
    pem.catch(() => { if (cache.get(key)?.pem === pem) cache.delete(key); });
    return pem;
  };
}

/**
 * Access tokens this process verified, by the raw token, with their claims: trusted again until their
 * `exp` and for at most `ttlMs`, so a client reusing its token costs one map lookup instead of
 * @fastify/jwt's decode, option merging and ES256 verification on every request. Only a fully verified
 * token enters; revocations are checked on every request, cached or not. At most `max` tokens (the
 * oldest is dropped first). A key that identity stops publishing is still accepted for tokens seen in
 * the last `ttlMs`, as with the key cache above.
 */
export class VerifiedTokens {
  private readonly tokens = new Map<string, { claims: AccessTokenClaims; until: number }>();

  constructor(private readonly ttlMs: number, private readonly max: number) {}

  /** The claims of a token verified before and still trusted at `now` (ms), else undefined. */
  get(token: string, now = Date.now()): AccessTokenClaims | undefined {
    const hit = this.tokens.get(token);
    if (!hit) return undefined;
    if (hit.until > now) return hit.claims;
    this.tokens.delete(token);
    return undefined;
  }

  /** Remembers a token that was just verified (never past its `exp`, seconds). */
  set(token: string, claims: AccessTokenClaims, now = Date.now()): void {
    const until = Math.min(claims.exp * 1000, now + this.ttlMs);
    if (until <= now) return;
    if (this.tokens.size >= this.max) this.tokens.delete(this.tokens.keys().next().value as string);
    this.tokens.set(token, { claims, until });
  }
}

/** The token of an `Authorization: Bearer <token>` header, else undefined (then @fastify/jwt decides). */
function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  return header !== undefined && header.length > 7 && header.startsWith('Bearer ') && !header.includes(' ', 7) ? header.slice(7) : undefined;
}

const GUARD = Symbol.for('pipp.auth.guard');

/**
 * Marks an authentication/authorization hook (requireRole, requireSubject) with the roles it admits:
 * moved before validation, and the roles declared on the route (`x-pipp-roles`) unless it declares them.
 */
function guard<T extends object>(fn: T, roles: readonly Role[]): T {
  return Object.assign(fn, { [GUARD]: roles });
}
const guardRoles = (fn: unknown): readonly Role[] | undefined => (typeof fn === 'function' ? (fn as unknown as Record<symbol, readonly Role[] | undefined>)[GUARD] : undefined);
const isGuard = (fn: unknown): boolean => guardRoles(fn) !== undefined;

const EXPIRED = new Set(['FST_JWT_AUTHORIZATION_TOKEN_EXPIRED', 'FAST_JWT_EXPIRED']);

/**
 * Verifies access tokens in every service (never trusting identity headers from outside): algorithm
 * allow-list, issuer, audience, expiry and not-before enforced by @fastify/jwt (fast-jwt), keys from
 * identity's JWKS through get-jwks (cached; an unknown `kid` refetches, so key rotation needs no
 * restart), revocations applied from events.
 */
export const authPlugin = fp(async function auth(app: FastifyInstance, opts: AuthOptions) {
  const algorithms = opts.algorithms ?? ['ES256'];
  if (algorithms.some((a) => a === 'none' || a.startsWith('HS'))) throw new Error('auth: only asymmetric algorithms are allowed');
  let publicKey = opts.publicKey;
  if (!publicKey) {
    if (!opts.jwksUrl) throw new Error('auth: jwksUrl or publicKey is required');
    const url = new URL(opts.jwksUrl);
    const getJwks = buildGetJwks({ max: 100, ttl: 10 * 60_000, jwksPath: url.pathname });
    const domain = `${url.protocol}//${url.host}/`;
    publicKey = cachedByKid((kid) => getJwks.getPublicKey({ domain, kid, alg: 'ES256' }), 10 * 60_000);
  }
  const lookup = publicKey;

  await app.register(fastifyJwt, {
    decode: { complete: true },
    secret: async (_request: FastifyRequest, token: { header?: { alg?: string; kid?: string } }) => {
      const alg = token.header?.alg;
      if (!alg || !algorithms.includes(alg)) throw Errors.unauthorized('The access token is signed with an algorithm that is not accepted');
      try {
        return await lookup(token.header?.kid);
      } catch {
        throw Errors.unauthorized('The access token is signed with an unknown key');
      }
    },
    verify: {
      algorithms: algorithms as never,
      allowedIss: opts.issuer,
      allowedAud: opts.audience,
      requiredClaims: ['sub', 'role', 'iat', 'exp', 'iss', 'aud'],
    },
  } as never);

  const revocations = new RevocationList(opts.maxTokenLifetimeMs ?? 3600_000);
  app.decorate('revocations', revocations);
  const verified = new VerifiedTokens(60_000, 10_000);

  const authenticate: preHandlerAsyncHookHandler = async (request) => {
    const token = bearerToken(request);
    const known = token === undefined ? undefined : verified.get(token);
    if (known) {
      request.user = known;
    } else {
      try {
        await request.jwtVerify();
      } catch (err) {
        const code = (err as { code?: string }).code ?? '';
        if ((err as { statusCode?: number }).statusCode === 401 && code.startsWith('PIPP_')) throw err;
        throw Errors.unauthorized(EXPIRED.has(code) ? 'The access token has expired; refresh it' : 'The access token is missing, invalid or expired');
      }
      if (token !== undefined) verified.set(token, request.user);
    }
    const user = request.user;
    if (!ROLES.includes(user.role)) throw Errors.unauthorized('The access token carries no known role');
    if (revocations.isRevoked(user)) throw Errors.unauthorized('The access token was revoked; sign in again');
  };
  app.decorate('authenticate', authenticate);

  app.decorate('requireRole', (...roles: Role[]): preHandlerAsyncHookHandler => guard(async function requireRole(request, reply) {
    await authenticate.call(this, request, reply);
    if (!roles.includes(request.user.role)) throw Errors.forbidden(`This needs one of the roles: ${roles.join(', ')}`);
  }, roles));

  app.decorate('requireSubject', (param = 'subjectId', privileged: Role[] = ['operator', 'dpo']): preHandlerAsyncHookHandler => guard(async function requireSubject(request, reply) {
    await authenticate.call(this, request, reply);
    const { role, sub } = request.user;
    if (privileged.includes(role)) return;
    // A role the route does not admit is told so (an operator on a subject-and-DPO route read "You
    // may only reach your own data"); a subject is told the data is someone else's.
    if (role !== 'subject') throw Errors.forbidden(`This needs one of the roles: ${['subject (their own data)', ...privileged].join(', ')}`);
    const target = (request.params as Record<string, string | undefined>)[param];
    if (target !== sub) throw Errors.forbidden('You may only reach your own data');
  }, ['subject', ...privileged]));

  // Routes name their guards as `preHandler`; they run before body validation instead, so that a
  // caller without a valid token gets 401/403 and learns nothing of the body schema (a 400 first).
  app.addHook('onRoute', (route) => {
    const handlers = route.preHandler === undefined ? [] : [route.preHandler].flat();
    const guards = handlers.filter(isGuard);
    if (!guards.length) return;
    // In place: the OpenAPI generator keeps this schema object and reads it when it builds the document.
    if (route.schema && !('x-pipp-roles' in route.schema)) Object.assign(route.schema, { 'x-pipp-roles': [...guardRoles(guards[0])!] });
    route.preHandler = handlers.filter((h) => !isGuard(h));
    route.preValidation = [...guards, ...(route.preValidation === undefined ? [] : [route.preValidation].flat())] as never;
  });

  if (app.hasDecorator('kafka')) {
    app.kafka.consume({
      name: 'revocations',
      broadcast: true,
      dedupe: false,
      fromBeginning: true,
      handlers: { 'privacy.session.revoked': async (event) => revocations.apply(event.payload) },
    });
  }
}, { name: 'pipp-auth' });
