import { ROLES, type Role } from '@pipp/contracts';
import { classifyPath, type PathClass } from './paths.js';

/** The parts of an OpenAPI 3.0 document the gateway reads and writes. */
export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description?: string; [k: string]: unknown };
  paths?: Record<string, Record<string, unknown>>;
  components?: { schemas?: Record<string, unknown>; securitySchemes?: Record<string, unknown>; [k: string]: unknown };
  tags?: { name: string; description?: string }[];
  [k: string]: unknown;
}

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch'] as const;

/** What the gateway learns about one upstream operation from its service's document. */
export interface RouteInfo {
  service: string;
  method: string;
  /** OpenAPI path template, e.g. `/v1/consent/subjects/{subjectId}/consents`. */
  template: string;
  /** `x-pipp-roles`: the roles the route admits (narrows the path-class default). */
  roles?: Role[];
  /** `x-pipp-function`: the function (policy 2.1, 2.4.2(5)) the route collects data for. */
  functionId?: string;
}

/**
 * Reads the operations of one service's document: template, declared roles (`x-pipp-roles`, unknown
 * role names dropped) and function (`x-pipp-function`). Paths outside `/v1/<service>/` are ignored:
 * a service cannot declare rules for another's routes.
 */
/**
 * When to fetch the upstream documents again (ms): after `failedRounds` consecutive refreshes in
 * which some upstream did not answer, 1 s doubling per round, at most `refreshMs`; `refreshMs` once
 * all answered. Services started together with the gateway are then in its document (and their
 * routes' `x-pipp-roles` in its route table) within seconds, not at the next regular refresh.
 */
export function refreshDelay(failedRounds: number, refreshMs: number): number {
  return failedRounds <= 0 ? refreshMs : Math.min(1000 * 2 ** Math.min(failedRounds - 1, 20), refreshMs);
}

export function routesOf(service: string, doc: OpenApiDocument): RouteInfo[] {
  const out: RouteInfo[] = [];
  for (const [template, item] of Object.entries(doc.paths ?? {})) {
    if (!template.startsWith(`/v1/${service}/`)) continue;
    for (const method of HTTP_METHODS) {
      const op = item[method] as Record<string, unknown> | undefined;
      if (!op) continue;
      const info: RouteInfo = { service, method: method.toUpperCase(), template };
      const roles = op['x-pipp-roles'];
      if (Array.isArray(roles)) info.roles = roles.filter((r): r is Role => (ROLES as readonly string[]).includes(r));
      if (typeof op['x-pipp-function'] === 'string') info.functionId = op['x-pipp-function'];
      out.push(info);
    }
  }
  return out;
}

const ACCESS_TEXT: Record<PathClass, string> = {
  public: 'Anonymous (policy 2.4.1(1)).',
  document: 'Anonymous.',
  subject: "A data subject for their own id only; operators and the DPO for anyone's, stating X-PIPP-Purpose (audited).",
  admin: 'Operators and/or the DPO (audited).',
  protected: 'Any valid access token, narrowed by x-pipp-roles (audited).',
};

const ERROR_REF = { $ref: '#/components/schemas/Error' };
const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: ERROR_REF } } });

/** Rewrites `#/components/schemas/<name>` references to the namespaced names. */
function renameRefs(node: unknown, rename: (name: string) => string): unknown {
  if (Array.isArray(node)) return node.map((n) => renameRefs(n, rename));
  if (node && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')) {
        out[k] = `#/components/schemas/${rename(v.slice('#/components/schemas/'.length))}`;
      } else {
        out[k] = renameRefs(v, rename);
      }
    }
    return out;
  }
  return node;
}

/**
 * Combines the gateway's own document and each service's into the one document of the public API
 * (served at /docs): every service's paths (only under its own `/v1/<service>/`) tagged with the
 * service, component schemas namespaced `<service>.<name>` so that equal names cannot collide,
 * one bearer security scheme, per-operation security from the URL convention (none on anonymous
 * routes), the access rule in `x-pipp-access`, and the gateway's own error answers (401, 403, 429,
 * 503 in the one error shape) on every operation. Services whose document could not be fetched are
 * listed in `info['x-pipp-unavailable']` and left out until they answer.
 */
export function combineDocuments(input: {
  gateway: OpenApiDocument;
  services: { service: string; doc: OpenApiDocument | undefined }[];
  errorSchema: unknown;
  version: string;
}): OpenApiDocument {
  const paths: Record<string, Record<string, unknown>> = {};
  const schemas: Record<string, unknown> = { Error: input.errorSchema };
  const tags: { name: string; description?: string }[] = [];
  const unavailable: string[] = [];
  const known = new Set(input.services.map((s) => s.service).concat('gateway'));
  const sources = [{ service: 'gateway', doc: input.gateway as OpenApiDocument | undefined }, ...input.services];
  for (const { service, doc } of sources) {
    if (!doc) {
      unavailable.push(service);
      continue;
    }
    tags.push({ name: service, description: doc.info?.description ?? doc.info?.title ?? service });
    const rename = (name: string) => `${service}.${name}`;
    for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) schemas[rename(name)] = renameRefs(schema, rename);
    for (const [template, rawItem] of Object.entries(doc.paths ?? {})) {
      if (!template.startsWith(`/v1/${service}/`)) continue;
      const item = renameRefs(rawItem, rename) as Record<string, Record<string, unknown>>;
      let cls: PathClass = 'protected';
      try {
        cls = classifyPath(template.replace(/\{[^}]+\}/g, 'x'), known)?.cls ?? 'protected';
      } catch { /* keep protected */ }
      for (const method of HTTP_METHODS) {
        const op = item[method];
        if (!op) continue;
        op.tags = [service];
        const roles = op['x-pipp-roles'];
        op['x-pipp-access'] = cls === 'subject' && Array.isArray(roles) && !roles.some((r) => r === 'operator' || r === 'dpo')
          ? 'The data subject only, for their own id (staff cannot act here).'
          : ACCESS_TEXT[cls];
        const responses = { ...(op.responses as Record<string, unknown> ?? {}) };
        responses['429'] ??= errorResponse('Too many requests (rate limit); see Retry-After');
        responses['503'] ??= errorResponse('The service is unavailable; see Retry-After');
        if (cls === 'public' || cls === 'document') {
          op.security = [];
        } else {
          op.security = [{ bearer: [] }];
          responses['401'] ??= errorResponse('The access token is missing, invalid, expired or revoked');
          responses['403'] ??= errorResponse('The token may not call this route');
        }
        op.responses = responses;
      }
      paths[template] = item;
    }
  }
  return {
    openapi: '3.0.3',
    info: {
      title: 'PIPP public API',
      version: input.version,
      description: 'Every service of the personal-information protection platform under one origin, through the gateway. '
        + 'Paths under /v1/<service>/public/ are anonymous; /v1/<service>/subjects/{subjectId}/ reach one data subject\'s data; '
        + '/v1/<service>/admin/ are staff functions; everything else needs a bearer access token. Errors share one shape (Error).',
      ...(unavailable.length ? { 'x-pipp-unavailable': unavailable } : {}),
    },
    tags,
    paths,
    components: {
      schemas,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
    },
  };
}
