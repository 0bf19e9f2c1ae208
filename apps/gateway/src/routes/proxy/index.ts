import type {} from '@fastify/jwt';
import type {} from '@fastify/swagger';
import replyFrom from '@fastify/reply-from';
import { LEGAL_BASIS_IDS, type Role } from '@pipp/contracts';
import { Errors, sendError, type PippError } from '@pipp/service-kit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import type { Config } from '../../config.js';
import { actsForAnother, decideAccess, type Actor } from '../../domain/access.js';
import { mustAudit, PURPOSE_ID, SUBJECT_ID } from '../../domain/audit.js';
import { classifyPath, PathError } from '../../domain/paths.js';
import { GatewayErrors } from '../../errors.js';
import type { Upstream } from '../../plugins/upstreams.js';

export interface ProxyOptions {
  config: Config;
  /** Verify token signatures (default true). Only the benchmark turns it off, to measure its cost. */
  verifyTokens: boolean;
}

/** Request headers a client may send on to a service; everything else (cookies, identity headers,
 * forwarding headers, user agent …) is dropped. `x-pipp-reason` is identity's free-text reason for a
 * staff action (kept in identity's own audit, never in the gateway's); `x-pipp-status-key` follows an
 * erasure request without signing in (retention). */
const PASSED = ['accept', 'accept-language', 'authorization', 'content-type', 'content-length', 'if-match', 'if-none-match',
  'if-modified-since', 'if-unmodified-since', 'idempotency-key', 'x-pipp-reason', 'x-pipp-status-key'] as const;
/** Response headers of a service the client does not see (the audit hints are for the gateway only). */
const DROPPED = new Set(['x-pipp-audit-subject', 'x-pipp-audit-purpose', 'server', 'x-powered-by', 'keep-alive', 'connection']);
/** An error code a service reports (`x-pipp-error-code`), as the audit trail records it. */
const ERROR_CODE = /^PIPP_[A-Z0-9_]{1,60}$/;
const COLLECTING = new Set(['POST', 'PUT', 'PATCH']);
const LEGAL_BASES = new Set<string>(LEGAL_BASIS_IDS);

/** Connection-level failures: the upstream is down or unreachable (503), or did not answer in time (504). */
const DOWN = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED']);
const TIMED_OUT = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'FST_REPLY_FROM_TIMEOUT', 'FST_REPLY_FROM_GATEWAY_TIMEOUT']);

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Routes every service's public API under one origin (issue bullet 1): `/v1/<service>/*` goes to the
 * service unchanged through @fastify/reply-from on an undici keep-alive pool per upstream. Before a
 * request leaves, the gateway classifies its path (URL convention), verifies the token (ES256 from
 * identity's JWKS; `exp`, `nbf`, `iss`, `aud`, revocations), applies the per-subject and
 * sensitive-endpoint rate limits, the roles and the ownership rule (a subject reaches only their own
 * `subjects/:subjectId/…`), requires staff to state a purpose for another subject's data, refuses
 * collection for a shut-down function (2.4.2(5)), and checks that the audit trail can take a record.
 * It forwards the request id, the token (every service verifies it again) and informational
 * `x-pipp-actor-sub`/`x-pipp-actor-role` headers that it always sets itself (a client's are dropped).
 * An upstream that is down answers 503 with Retry-After at once (circuit breaker), one that hangs
 * 504 after UPSTREAM_TIMEOUT_MS.
 */
export default async function proxyRoutes(app: FastifyInstance, opts: ProxyOptions) {
  const { config } = opts;
  const services = app.upstreams.services;

  /** Verifies the bearer token, or (benchmark only) decodes it unverified. */
  const verify = async (request: FastifyRequest, reply: FastifyReply): Promise<Actor> => {
    if (opts.verifyTokens) {
      await app.authenticate.call(app, request, reply);
    } else {
      const token = single(request.headers.authorization)?.replace(/^Bearer\s+/i, '') ?? '';
      type Claims = { sub: string; role: Role; sid?: string };
      const raw = token ? app.jwt.decode<Claims | { payload: Claims }>(token) : null;
      const decoded = raw && 'payload' in raw ? raw.payload : raw;
      if (!decoded?.sub || !decoded.role) throw Errors.unauthorized('Authentication is required: send a bearer access token');
      (request as { user?: unknown }).user = decoded;
    }
    const { sub, role, sid } = request.user;
    return { sub, role, ...(sid ? { sid } : {}) };
  };

  /** onRequest: everything that decides whether the request may go on, before its body is read. */
  const guard = async (request: FastifyRequest, reply: FastifyReply) => {
    const gw = request.gw;
    const path = request.url.split('?')[0]!;
    try {
      gw.path = classifyPath(path, services);
    } catch (err) {
      if (err instanceof PathError) throw GatewayErrors.badPath(err.message);
      throw err;
    }
    if (!gw.path) throw Errors.notFound(`Route ${request.method} ${path} not found`);
    const { cls, service, subjectId } = gw.path;
    // The declared route first: the audit record of a request refused below names its template too.
    gw.route = app.upstreams.routeOf(service, request.method, path);
    if (app.limits.isSensitive(path)) await app.limits.sensitive(request);

    if (cls === 'public' || cls === 'document') {
      // A token is optional here; a valid one identifies the caller (rate limit, audit), an invalid one is ignored.
      if (request.headers.authorization) gw.actor = await verify(request, reply).catch(() => undefined);
    } else {
      gw.actor = await verify(request, reply);
    }
    if (gw.actor) await app.limits.perSubject(request);

    const refusal = decideAccess({ cls, actor: gw.actor, subjectId, routeRoles: gw.route?.roles });
    if (refusal) {
      throw refusal.status === 401
        ? Errors.unauthorized(refusal.message)
        : Errors.forbidden(refusal.message, refusal.clause ? { clause: refusal.clause } : {});
    }

    const purpose = single(request.headers['x-pipp-purpose']);
    if (purpose !== undefined) {
      if (!PURPOSE_ID.test(purpose)) throw Errors.validation('X-PIPP-Purpose must be a purpose id (lower-case letters, digits and -)', { details: [{ path: '/headers/x-pipp-purpose', message: 'must be a purpose id' }] });
      gw.purpose = purpose;
    }
    const legalBasis = single(request.headers['x-pipp-legal-basis']);
    if (legalBasis !== undefined) {
      if (!LEGAL_BASES.has(legalBasis)) throw Errors.validation(`X-PIPP-Legal-Basis must be one of: ${LEGAL_BASIS_IDS.join(', ')}`, { details: [{ path: '/headers/x-pipp-legal-basis', message: 'must be a legal basis id' }] });
      gw.legalBasis = legalBasis;
    }
    if (cls === 'subject' && config.AUDIT_REQUIRE_PURPOSE && !gw.purpose && actsForAnother(gw.actor, subjectId)) {
      throw GatewayErrors.purposeRequired(undefined, { clause: '5.4', details: [{ path: '/headers/x-pipp-purpose', message: 'is required for staff and services' }] });
    }
    const fn = gw.route?.functionId;
    if (fn && COLLECTING.has(request.method) && app.shutdowns.isShutDown(fn)) {
      throw GatewayErrors.functionShutDown(`The function ${fn} has stopped operating and no longer collects data`, { clause: '2.4.2(5)' });
    }
    if (mustAudit(cls, request.method, 200)) app.audit.writer.ensureCapacity();
  };

  const forwardHeaders = (request: FastifyRequest, headers: IncomingHttpHeaders): IncomingHttpHeaders => {
    const out: IncomingHttpHeaders = { host: headers.host };
    for (const name of PASSED) if (headers[name] !== undefined) out[name] = headers[name] as string;
    out['x-request-id'] = String(request.id);
    out['x-forwarded-for'] = request.ip;
    out['x-forwarded-proto'] = request.protocol;
    const { actor, purpose, legalBasis } = request.gw;
    if (actor) {
      out['x-pipp-actor-sub'] = actor.sub;
      out['x-pipp-actor-role'] = actor.role;
    }
    if (purpose) out['x-pipp-purpose'] = purpose;
    if (legalBasis) out['x-pipp-legal-basis'] = legalBasis;
    return out;
  };

  const failure = (upstream: Upstream, reply: FastifyReply, error: PippError & { cause?: { code?: string } }) => {
    const code = error.cause?.code ?? error.code;
    let err: PippError;
    if (TIMED_OUT.has(code) || error.statusCode === 504) {
      upstream.breaker.failed();
      err = Object.assign(new Error('upstream timeout'), { statusCode: 504, retryAfter: 2 }) as PippError;
    } else if (DOWN.has(code) || error.statusCode === 503) {
      upstream.breaker.failed();
      err = Errors.unavailable(`The ${upstream.service} service is unavailable; retry shortly`, { retryAfter: 2 });
    } else {
      upstream.breaker.succeeded();
      err = Object.assign(new Error('bad gateway'), { statusCode: 502, retryAfter: 2 }) as PippError;
    }
    reply.request.log.warn({ upstream: upstream.service, errorCode: code }, 'upstream request failed'); // not `code`: redacted as a one-time code
    reply.request.gw.code = err.statusCode === 503 ? 'PIPP_UNAVAILABLE' : err.statusCode === 504 ? 'PIPP_UPSTREAM_TIMEOUT' : 'PIPP_BAD_GATEWAY';
    sendError(reply, err);
  };

  for (const upstream of app.upstreams.list) {
    await app.register(async (scope) => {
      await scope.register(replyFrom, {
        base: upstream.url,
        disableRequestLogging: true,
        undici: {
          connections: config.UPSTREAM_CONNECTIONS,
          pipelining: 1,
          keepAliveTimeout: 30_000,
          headersTimeout: config.UPSTREAM_TIMEOUT_MS,
          bodyTimeout: config.UPSTREAM_TIMEOUT_MS,
          connect: { timeout: config.UPSTREAM_CONNECT_TIMEOUT_MS },
        },
      } as never);

      scope.route({
        method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
        url: `/v1/${upstream.service}/*`,
        // Bodies are the service's to validate (against its own schemas); the gateway forwards JSON only.
        schema: { hide: true },
        onRequest: guard,
        handler: async (request, reply) => {
          const wait = upstream.breaker.acquire();
          if (wait) throw Errors.unavailable(`The ${upstream.service} service is unavailable; retry shortly`, { retryAfter: wait });
          const hasBody = request.body !== undefined && request.method !== 'GET';
          // The path alone (already checked by classifyPath): reply-from refuses "../" anywhere in what
          // it is given, the query included, and appends the client's query string unchanged itself.
          const q = request.url.indexOf('?');
          return reply.from(q === -1 ? request.url : request.url.slice(0, q), {
            ...(hasBody ? { body: JSON.stringify(request.body), contentType: 'application/json; charset=utf-8' } : {}),
            rewriteRequestHeaders: (_req, headers) => forwardHeaders(request, headers),
            rewriteHeaders: (headers) => {
              const req = request;
              upstream.breaker.succeeded();
              const out: Record<string, unknown> = {};
              for (const [name, value] of Object.entries(headers)) if (!DROPPED.has(name)) out[name] = value;
              const reported = single(headers['x-pipp-audit-subject'] as string | string[] | undefined);
              if (reported && SUBJECT_ID.test(reported)) req.gw.reportedSubjectId = reported;
              const code = single(headers['x-pipp-error-code'] as string | string[] | undefined);
              if (code && ERROR_CODE.test(code)) req.gw.code = code;
              const reportedPurpose = single(headers['x-pipp-audit-purpose'] as string | string[] | undefined);
              if (reportedPurpose && PURPOSE_ID.test(reportedPurpose)) req.gw.reportedPurpose = reportedPurpose;
              return out as IncomingHttpHeaders;
            },
            onError: (_rep, { error }) => failure(upstream, reply, error as never),
            // No retries: reply-from would otherwise re-send a GET answered 503 up to ten times (and
            // wait its Retry-After each time); the client gets the service's 503 and its Retry-After.
            retryDelay: () => null,
          });
        },
      });
    });
  }
}
