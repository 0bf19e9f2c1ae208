import type { EventPayload } from '@pipp/contracts';
import { includeHidden, subjectLookup } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { createHash, createHmac, hkdfSync, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config.js';
import { IdentityErrors } from '../errors.js';
import { newId, type KeyRing } from './keys.js';
import type { Session } from './models.js';

type RevokeReason = EventPayload<'privacy.session.revoked'>['reason'];
const DAY_MS = 86_400_000;
/** How many rotated refresh tokens of a session are remembered for reuse detection. */
const PREVIOUS_KEPT = 20;

/** What sign-in, registration and refresh return (the OAuth 2.0 token response, plus ids). */
export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  /** Access-token lifetime (s). */
  expiresIn: number;
  sessionId: string;
  subjectId: string;
  role: 'subject' | 'operator' | 'dpo';
}

export interface SessionStart {
  subjectId: string;
  kind: 'subject' | 'staff';
  role: 'subject' | 'operator' | 'dpo';
  deviceId?: string | undefined;
  userAgent?: string | undefined;
  ipPrefix?: string | undefined;
}

export interface Sessions {
  /** Opens a session (a refresh-token family) and issues its first tokens. */
  start(s: SessionStart): Promise<TokenPair>;
  /**
   * Rotates a refresh token: the presented one is spent and a new pair is returned. Presenting a
   * spent token again (reuse: it was stolen, or replayed) revokes the whole session family, except
   * within REFRESH_REUSE_GRACE_S of its own rotation while its successor is still the session's
   * current token: then the answer carries that same successor and a new access token (parallel
   * refreshes of one client; Okta's and Auth0's "grace period" / "reuse interval").
   * @throws PIPP_INVALID_REFRESH_TOKEN (401) for unknown, expired, revoked or reused tokens.
   */
  refresh(refreshToken: string): Promise<TokenPair>;
  /** Revokes one session of a subject; its access tokens stop working everywhere. False if none. */
  revoke(subjectId: string, sessionId: string, reason: RevokeReason): Promise<boolean>;
  /** Revokes every active session of a subject (optionally but one); returns how many. */
  revokeAll(subjectId: string, reason: RevokeReason, except?: string): Promise<number>;
  /** A service token (role `service`, no session) for a service name. */
  serviceToken(service: string): { accessToken: string; expiresIn: number };
}

declare module 'fastify' {
  interface FastifyInstance {
    sessions: Sessions;
  }
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
function sameHex(a: string | undefined, b: string): boolean {
  if (!a || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}

/**
 * Sessions and tokens (DESIGN.md security model): ES256 access tokens of ACCESS_TOKEN_TTL_S with
 * `sub`, `role`, `sid`, `iss`, `aud`, whole-second `iat`/`exp`, `jti`; opaque refresh tokens
 * `<sessionId>.<secret>` stored only as SHA-256, rotated on every use with reuse detection; each
 * revocation is announced through the session document's outbox as `privacy.session.revoked` and
 * applied in-process at once.
 */
export const sessionsPlugin = fp(async function sessions(app: FastifyInstance, opts: { config: Config; keys: KeyRing }) {
  const { config } = opts;
  const model = app.models.sessions;
  // A subject's active sessions, found with those of the other calls made meanwhile (erasures handled
  // at once): one `$in` query for all of them instead of one collection read each on FerretDB 1.24.
  const activeSessions = subjectLookup(
    (subjectIds) => model.find({ subjectId: { $in: subjectIds }, active: true }, { _id: 1, subjectId: 1 }).lean<{ _id: string; subjectId: string }[]>(),
    (s) => s.subjectId,
  );
  const signAccess = opts.keys.signer({ issuer: config.AUTH_ISSUER, audience: config.AUTH_AUDIENCE, expiresInS: config.ACCESS_TOKEN_TTL_S });
  const signService = opts.keys.signer({ issuer: config.AUTH_ISSUER, audience: config.AUTH_AUDIENCE, expiresInS: config.SERVICE_TOKEN_TTL_S });
  const ttlMs = config.REFRESH_TOKEN_TTL_DAYS * DAY_MS;
  const graceMs = config.REFRESH_REUSE_GRACE_S * 1000;
  // A refresh token's successor is derived from its secret (HMAC with a key derived from the signing
  // key), so a second refresh with the same token can be answered with the successor the first one
  // issued: only hashes are stored. Session's first secrets stay random.
  const rotationKey = Buffer.from(hkdfSync('sha256', config.IDENTITY_SIGNING_KEY, 'pipp-identity', 'refresh-token rotation', 32));
  const successor = (secret: string) => createHmac('sha256', rotationKey).update(secret).digest('base64url');
  /** True when `doc` was rotated from the presented token (its current one is `next`) less than graceMs ago. */
  const inGrace = (doc: Pick<Session, 'active' | 'expiresAt' | 'lastUsedAt' | 'refreshHash'>, next: string, now: Date) =>
    graceMs > 0 && doc.active && doc.expiresAt.getTime() > now.getTime() && now.getTime() - doc.lastUsedAt.getTime() <= graceMs
    && sameHex(doc.refreshHash, sha256(next));

  const pair = (s: Pick<Session, '_id' | 'subjectId' | 'role'>, secret: string): TokenPair => ({
    accessToken: signAccess({ sub: s.subjectId, role: s.role, sid: s._id, jti: randomUUID() }),
    refreshToken: `${s._id}.${secret}`,
    tokenType: 'Bearer',
    expiresIn: config.ACCESS_TOKEN_TTL_S,
    sessionId: s._id,
    subjectId: s.subjectId,
    role: s.role,
  });

  const revokedEvent = (subjectId: string, sessionId: string, reason: RevokeReason, at: Date) => {
    // A session id is never reused, so rejecting every token of it issued up to the next whole second
    // (iat is floored to seconds) is exact.
    const notBefore = new Date(Math.ceil(at.getTime() / 1000) * 1000 + 1000).toISOString();
    app.revocations.apply({ subjectId, sessionId, notBefore });
    return app.outbox.entry('privacy.session.revoked', { subject: subjectId, payload: { subjectId, sessionId, notBefore, reason } });
  };

  async function revokeDoc(filter: Record<string, unknown>, subjectId: string, sessionId: string, reason: RevokeReason) {
    const now = new Date();
    const doc = await app.outbox.update(model, { ...filter, _id: sessionId, subjectId, active: true }, {
      $set: { active: false, revokedAt: now, revokeReason: reason, purgeAt: new Date(now.getTime() + 30 * DAY_MS) },
    }, [revokedEvent(subjectId, sessionId, reason, now)]);
    return doc !== null;
  }

  const api: Sessions = {
    async start(s) {
      const now = new Date();
      const secret = randomBytes(32).toString('base64url');
      const doc: Session = {
        _id: newId('ses'), subjectId: s.subjectId, kind: s.kind, role: s.role, refreshHash: sha256(secret), previous: [],
        active: true, createdAt: now, lastUsedAt: now, expiresAt: new Date(now.getTime() + ttlMs),
        ...(s.deviceId ? { deviceId: s.deviceId } : {}),
        ...(s.userAgent ? { userAgent: s.userAgent } : {}),
        ...(s.ipPrefix ? { ipPrefix: s.ipPrefix } : {}),
        purgeAt: new Date(now.getTime() + ttlMs + 30 * DAY_MS),
      };
      await model.create(doc);
      return pair(doc, secret);
    },

    async refresh(refreshToken) {
      const m = /^(ses_[0-9a-f]{32})\.([A-Za-z0-9_-]{43})$/.exec(refreshToken);
      if (!m) throw IdentityErrors.invalidRefresh();
      const [, sid, secret] = m as unknown as [string, string, string];
      const presented = sha256(secret);
      const read = () => model.findById(sid).select('+refreshHash +previous').lean();
      let doc = await read();
      if (!doc) throw IdentityErrors.invalidRefresh();
      const now = new Date();
      const next = successor(secret);
      if (sameHex(doc.refreshHash, presented)) {
        if (!doc.active || doc.expiresAt.getTime() <= now.getTime()) throw IdentityErrors.invalidRefresh();
        const updated = await model.findOneAndUpdate(
          { _id: sid, refreshHash: presented, active: true },
          { $set: {
            refreshHash: sha256(next), previous: [presented, ...(doc.previous ?? [])].slice(0, PREVIOUS_KEPT),
            lastUsedAt: now, expiresAt: new Date(now.getTime() + ttlMs), purgeAt: new Date(now.getTime() + ttlMs + 30 * DAY_MS),
          } },
          { new: true },
        ).select(includeHidden(model)).lean();
        if (updated) return pair(updated, next);
        // Someone else spent this very token a moment ago: the grace period below, or reuse.
        doc = await read();
        if (!doc) throw IdentityErrors.invalidRefresh();
      } else if (!(doc.previous ?? []).some((h) => sameHex(h, presented))) {
        throw IdentityErrors.invalidRefresh();
      }
      if (inGrace(doc, next, now)) return pair(doc, next);
      // Reuse of a rotated token: the family is compromised; end it (refresh-reuse, DESIGN.md).
      await revokeDoc({}, doc.subjectId, sid, 'refresh-reuse');
      throw IdentityErrors.invalidRefresh('This refresh token was already used; the session was ended for your safety. Sign in again');
    },

    revoke: (subjectId, sessionId, reason) => revokeDoc({}, subjectId, sessionId, reason),

    async revokeAll(subjectId, reason, except) {
      const active = await activeSessions.load(subjectId);
      let n = 0;
      for (const s of active) {
        if (s._id === except) continue;
        if (await revokeDoc({}, subjectId, s._id, reason)) n += 1;
      }
      return n;
    },

    serviceToken(service) {
      return { accessToken: signService({ sub: service, role: 'service', jti: randomUUID() }), expiresIn: config.SERVICE_TOKEN_TTL_S };
    },
  };
  app.decorate('sessions', api);
}, { name: 'identity-sessions', dependencies: ['identity-models'] });
