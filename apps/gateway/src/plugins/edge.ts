import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import { ROLES } from '@pipp/contracts';
import { Errors, type PippError } from '@pipp/service-kit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { v7 as uuidv7 } from 'uuid';
import sjson from 'secure-json-parse';
import type { Config } from '../config.js';
import type { Actor } from '../domain/access.js';
import { mustAudit, outcomeOf, purposeOf, subjectOf, type AuditRecord } from '../domain/audit.js';
import { judgeContentType, MAX_JSON_DEPTH, nestsDeeperThan } from '../domain/content-type.js';
import { redactedPath, type ClassifiedPath } from '../domain/paths.js';
import type { RouteInfo } from '../domain/openapi.js';

/** What the gateway learns about one request as it passes (for access decisions and the audit record). */
export interface GatewayContext {
  startedAt: number;
  at: Date;
  path?: ClassifiedPath;
  actor?: Actor;
  route?: RouteInfo;
  purpose?: string;
  legalBasis?: string;
  /** What the upstream reported in `x-pipp-audit-subject` / `x-pipp-audit-purpose`. */
  reportedSubjectId?: string;
  reportedPurpose?: string;
  /** Code of the error the gateway answered with, if any. */
  code?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    gw: GatewayContext;
  }
  interface FastifyInstance {
    /** Per-IP, per-subject and sensitive-endpoint limits; each throws PIPP_TOO_MANY_REQUESTS (429, Retry-After). */
    limits: {
      perIp(request: FastifyRequest): Promise<void>;
      perSubject(request: FastifyRequest): Promise<void>;
      sensitive(request: FastifyRequest): Promise<void>;
      isSensitive(path: string): boolean;
    };
  }
}

const UNLIMITED = new Set(['/livez', '/readyz']);

/**
 * The actor of a request: what the gateway verified, or what the kit's guards set on the gateway's own
 * routes (the claims of a correctly signed token, also when it was then refused as revoked; never a
 * token with an unknown role).
 */
export function actorOf(request: FastifyRequest): Actor | undefined {
  if (request.gw?.actor) return request.gw.actor;
  const user = (request as { user?: { sub?: string; role?: string; sid?: string } }).user;
  if (typeof user?.sub === 'string' && (ROLES as readonly string[]).includes(user.role ?? ''))
    return { sub: user.sub, role: user.role as Actor['role'], ...(user.sid ? { sid: user.sid } : {}) };
  return undefined;
}

/**
 * The gateway's edge, for every request: security headers (@fastify/helmet), CORS for the configured
 * client origins (@fastify/cors), JSON-only bodies parsed here whatever the spelling of their
 * Content-Type (so a variant cannot skip validation), rate limits (@fastify/rate-limit: per client IP
 * before anything else, stricter on sign-in, code, password and token endpoints, per token subject once
 * verified; the client IP is the socket address unless TRUSTED_PROXIES names the proxy, so a forged
 * X-Forwarded-For changes nothing), and the audit record written when a response is sent.
 */
export const edgePlugin = fp(async function edge(app: FastifyInstance, opts: { config: Config }) {
  const { config } = opts;
  const origins = config.CORS_ORIGINS.split(',').map((o) => o.trim()).filter(Boolean);

  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: { 'default-src': ["'none'"], 'frame-ancestors': ["'none'"], 'base-uri': ["'none'"] } },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    referrerPolicy: { policy: 'no-referrer' },
    strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
  });
  await app.register(cors, {
    origin: origins.length ? origins : false,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['authorization', 'content-type', 'x-request-id', 'x-pipp-purpose', 'x-pipp-legal-basis', 'x-pipp-status-key', 'if-match', 'if-none-match', 'idempotency-key'],
    exposedHeaders: ['x-request-id', 'retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'],
    credentials: false,
    maxAge: 600,
    strictPreflight: true,
  });

  // Bodies: JSON only, parsed here (prototype poisoning refused) and forwarded re-serialized.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, body, done) => {
    const judged = judgeContentType(request.headers['content-type']);
    if (!judged.ok) return done(Errors.unsupportedMediaType(judged.reason), undefined);
    const text = body as string;
    if (text.trim() === '') return done(Errors.validation('The JSON body is empty'), undefined);
    let parsed: unknown;
    try {
      parsed = sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
    } catch {
      return done(Errors.validation('The body is not valid JSON, or has __proto__/constructor keys'), undefined);
    }
    if (nestsDeeperThan(parsed)) return done(Errors.validation(`The JSON body nests deeper than ${MAX_JSON_DEPTH} levels`), undefined);
    return done(null, parsed);
  });

  await app.register(rateLimit, { global: false, cache: 100_000 });
  const window = config.RATE_LIMIT_WINDOW_MS;
  const sensitivePaths = new RegExp(config.RATE_LIMIT_SENSITIVE_PATHS);
  const limiter = (create: ReturnType<FastifyInstance['createRateLimit']>, what: string) => async (request: FastifyRequest) => {
    const r = await create(request);
    if (r.isAllowed || !r.isExceeded) return;
    throw Errors.tooManyRequests(`Too many requests ${what}; retry in ${r.ttlInSeconds} s`, { retryAfter: Math.max(1, r.ttlInSeconds) });
  };
  const perIp = limiter(app.createRateLimit({ max: config.RATE_LIMIT_IP_MAX, timeWindow: window, cache: 100_000 } as never), 'from this address');
  const sensitive = limiter(app.createRateLimit({ max: config.RATE_LIMIT_SENSITIVE_MAX, timeWindow: window, cache: 100_000 } as never), 'to sign-in and code endpoints from this address');
  const perSubject = limiter(app.createRateLimit({
    max: config.RATE_LIMIT_SUBJECT_MAX, timeWindow: window, cache: 100_000,
    keyGenerator: (request: FastifyRequest) => { const a = actorOf(request); return a ? `${a.role}:${a.sub}` : `ip:${request.ip}`; },
  } as never), 'for this account');
  app.decorate('limits', { perIp, perSubject, sensitive, isSensitive: (path: string) => sensitivePaths.test(path) });

  app.decorateRequest('gw', null as unknown as GatewayContext);
  app.addHook('onRequest', async (request) => {
    request.gw = { startedAt: performance.now(), at: new Date() };
    if (UNLIMITED.has(request.url)) return;
    await perIp(request);
  });

  app.addHook('onError', async (request, _reply, error: PippError) => {
    if (request.gw) request.gw.code = error.validation ? 'PIPP_VALIDATION' : (typeof error.code === 'string' && error.code.startsWith('PIPP_') ? error.code : request.gw.code);
  });

  // The audit record of every request that reads or changes someone's PI (see mustAudit).
  app.addHook('onResponse', async (request, reply) => {
    const gw = request.gw;
    if (!gw?.path || !mustAudit(gw.path.cls, request.method, reply.statusCode)) return;
    const actor = actorOf(request);
    const subjectId = subjectOf({ pathSubjectId: gw.path.subjectId, reportedSubjectId: gw.reportedSubjectId, body: request.body, actor });
    const purpose = purposeOf({ stated: gw.purpose, reported: gw.reportedPurpose, body: request.body, actor, subjectId });
    const record: AuditRecord = {
      // Time-ordered (UUID v7, monotonic within the process): records of one instance sharing an `at`
      // millisecond still list in the order they were made.
      _id: uuidv7(),
      at: gw.at,
      requestId: String(request.id),
      actor: actor ? { role: actor.role, sub: actor.sub, ...(actor.sid ? { sid: actor.sid } : {}) } : { role: 'anonymous' },
      ...(subjectId ? { subjectId } : {}),
      service: gw.path.service,
      method: request.method,
      route: gw.route?.template ?? redactedPath(gw.path),
      pathClass: gw.path.cls,
      ...(purpose ? { purpose } : {}),
      ...(gw.legalBasis ? { legalBasis: gw.legalBasis } : {}),
      outcome: outcomeOf(reply.statusCode),
      status: reply.statusCode,
      ...(gw.code && reply.statusCode >= 400 ? { code: gw.code } : {}),
      durationMs: Math.round((performance.now() - gw.startedAt) * 10) / 10,
    };
    app.audit.writer.append(record);
  });
}, { name: 'gateway-edge', dependencies: ['gateway-audit'] });
