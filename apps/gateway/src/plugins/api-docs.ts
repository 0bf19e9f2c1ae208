import type {} from '@fastify/swagger';
import { ErrorResponseSchema } from '@pipp/contracts';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { request } from 'undici';
import type { Config } from '../config.js';
import { combineDocuments, refreshDelay, routesOf, type OpenApiDocument } from '../domain/openapi.js';

/** Where each upstream's document stands. */
export interface SourceStatus {
  service: string;
  ok: boolean;
  /** Last successful fetch (ISO 8601), if any. */
  fetchedAt?: string;
  error?: string;
}

/** `app.apiDocs`: the combined OpenAPI document of the public API. */
export interface ApiDocs {
  /** The combined document as last built (gateway's own routes at least). */
  document(): OpenApiDocument;
  /** Whether the last combined document validated, with the first problems if not. */
  validation(): { valid: boolean; errors: string[] };
  sources(): SourceStatus[];
  /** Fetches every upstream's document again (each bounded by OPENAPI_FETCH_TIMEOUT_MS), rebuilds and validates. */
  refresh(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    apiDocs: ApiDocs;
  }
}

const ERROR_SCHEMA = JSON.parse(JSON.stringify(ErrorResponseSchema)) as unknown;

let sharedValidator: Validator | undefined;
let queue: Promise<unknown> = Promise.resolve();

/**
 * Validates an OpenAPI document against the specification's schema and checks every $ref resolves.
 * One validator is reused: building one compiles the specification's schema (~0.3–0.7 s of CPU that
 * would block the event loop at each refresh); calls are serialized because it keeps the last document.
 */
export function validateDocument(doc: OpenApiDocument): Promise<{ valid: boolean; errors: string[] }> {
  const run = async () => {
    sharedValidator ??= new Validator();
    const validator = sharedValidator;
    const res = await validator.validate(structuredClone(doc) as never);
    if (!res.valid) {
      const errors = Array.isArray(res.errors) ? res.errors : [res.errors];
      return { valid: false, errors: errors.slice(0, 10).map((e) => JSON.stringify(e)) };
    }
    try {
      validator.resolveRefs();
    } catch (err) {
      return { valid: false, errors: [(err as Error).message] };
    }
    return { valid: true, errors: [] };
  };
  const result = queue.then(run, run);
  queue = result.catch(() => undefined);
  return result;
}

/**
 * Builds the combined document (issue: "each service generates its document from its route schemas;
 * the gateway serves the combined document"): fetches `/v1/<service>/openapi.json` from every upstream
 * when the gateway is ready (without making start-up wait: an unreachable upstream must not stop the
 * gateway), again within seconds while an upstream has not answered, and every OPENAPI_REFRESH_MS;
 * keeps the last good document of a service that stops
 * answering, feeds the route table (`x-pipp-roles`, `x-pipp-function`), and validates the result.
 */
export const apiDocsPlugin = fp(async function apiDocs(app: FastifyInstance, opts: { config: Config; version: string }) {
  const { config } = opts;
  const docs = new Map<string, OpenApiDocument>();
  const status = new Map<string, SourceStatus>(app.upstreams.list.map((u) => [u.service, { service: u.service, ok: false, error: 'not fetched yet' }]));
  let combined: OpenApiDocument | undefined;
  let validation = { valid: false, errors: ['not built yet'] };
  let inFlight: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  let lastBuilt = '';
  const build = async () => {
    const gateway = app.swagger() as unknown as OpenApiDocument;
    const next = combineDocuments({
      gateway,
      services: app.upstreams.list.map((u) => ({ service: u.service, doc: docs.get(u.service) })),
      errorSchema: ERROR_SCHEMA,
      version: opts.version,
    });
    const text = JSON.stringify(next);
    if (text === lastBuilt) return; // unchanged since the last refresh: nothing to validate again
    lastBuilt = text;
    combined = next;
    validation = await validateDocument(next);
    if (!validation.valid) app.log.error({ errors: validation.errors }, 'combined OpenAPI document does not validate');
  };

  const fetchOne = async (service: string, url: string) => {
    try {
      const res = await request(`${url}/v1/${service}/openapi.json`, {
        headersTimeout: config.OPENAPI_FETCH_TIMEOUT_MS,
        bodyTimeout: config.OPENAPI_FETCH_TIMEOUT_MS,
        signal: AbortSignal.timeout(config.OPENAPI_FETCH_TIMEOUT_MS),
      });
      if (res.statusCode !== 200) {
        await res.body.dump();
        throw new Error(`HTTP ${res.statusCode}`);
      }
      const doc = await res.body.json() as OpenApiDocument;
      if (!doc || typeof doc !== 'object' || typeof doc.openapi !== 'string') throw new Error('not an OpenAPI document');
      docs.set(service, doc);
      app.upstreams.setRoutes(service, routesOf(service, doc));
      status.set(service, { service, ok: true, fetchedAt: new Date().toISOString() });
    } catch (err) {
      const previous = status.get(service);
      status.set(service, { service, ok: false, ...(previous?.fetchedAt ? { fetchedAt: previous.fetchedAt } : {}), error: (err as Error).message });
      app.log.warn({ upstream: service, err }, 'could not fetch the OpenAPI document of an upstream');
    }
  };

  const refresh = () => {
    inFlight ??= (async () => {
      await Promise.all(app.upstreams.list.map((u) => fetchOne(u.service, u.url)));
      await build();
    })().finally(() => { inFlight = undefined; });
    return inFlight;
  };

  app.decorate('apiDocs', {
    document: () => combined ?? { openapi: '3.0.3', info: { title: 'PIPP public API', version: opts.version }, paths: {} },
    validation: () => validation,
    sources: () => [...status.values()],
    refresh,
  } satisfies ApiDocs);

  app.addHook('onReady', async () => {
    await build();
    // Until every upstream has answered, again within seconds (refreshDelay), then every OPENAPI_REFRESH_MS.
    let failedRounds = 0;
    const tick = () => {
      if (closed) return;
      failedRounds = [...status.values()].every((s) => s.ok) ? 0 : failedRounds + 1;
      timer = setTimeout(() => { void refresh().finally(tick); }, refreshDelay(failedRounds, config.OPENAPI_REFRESH_MS));
      timer.unref();
    };
    void refresh().finally(tick);
  });
  app.addHook('onClose', async () => {
    closed = true;
    clearTimeout(timer);
    await inFlight?.catch(() => undefined);
  });
}, { name: 'gateway-api-docs', dependencies: ['gateway-upstreams'] });
