import { DataCategorySchema, DecisionSchema, compile, describeErrors, type Decision, type DecisionRequest } from '@pipp/contracts';
import { Errors } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Type, type Static } from '@sinclair/typebox';
import { Pool, request, type Dispatcher } from 'undici';

/** Path of the consent service's decision API (policy 2.1, 2.4.2(2), 2.4.2(4), 3.1, 3.3, 5.3). */
export const DECISIONS_PATH = '/v1/consent/decisions';

export interface ConsentClientOptions {
  /** Base URL of the consent service, e.g. http://127.0.0.1:4002 (config CONSENT_URL). */
  baseUrl: string;
  /** A service access token (role `service`), e.g. `ServiceTokens.token()`. */
  token: () => Promise<string>;
  /** How long a decision may be reused (ms). Default 1000: a withdrawal is honoured within a second even without events. */
  cacheTtlMs?: number;
  /** Per-request timeout (ms). Default 2000. */
  timeoutMs?: number;
  /** Bound on cached decisions. Default 10 000. */
  maxEntries?: number;
}

const isDecision = compile(DecisionSchema);

/** Path of the consent service's public catalogue of purposes and functions (policy 2.1, 2.4.1). */
export const CATALOGUE_PATH = '/v1/consent/public/catalogue';

/** A function of the catalogue, as far as other services need it: its status, purposes and the data categories it needs. */
export const CatalogueFunctionSchema = Type.Object({
  id: Type.String(),
  title: Type.String(),
  purposes: Type.Array(Type.String()),
  status: Type.Union([Type.Literal('active'), Type.Literal('retired')]),
  categories: Type.Array(DataCategorySchema),
  shutDown: Type.Union([Type.Object({ shutdownId: Type.String(), effectiveAt: Type.String() }), Type.Null()]),
});
export type CatalogueFunction = Static<typeof CatalogueFunctionSchema>;

/** A purpose of the catalogue: `requires` names the separate consent it needs per recipient, disclosure or country (null: none). */
export const CataloguePurposeSchema = Type.Object({ id: Type.String(), requires: Type.Union([Type.String(), Type.Null()]) });
export type CataloguePurpose = Static<typeof CataloguePurposeSchema>;

/** The catalogue of purposes and functions, as read by `fetchCatalogue`. */
export interface Catalogue { purposes: CataloguePurpose[]; functions: CatalogueFunction[] }
const isCatalogue = compile(Type.Object({ purposes: Type.Array(CataloguePurposeSchema), functions: Type.Array(CatalogueFunctionSchema) }));

/**
 * The consent service's catalogue of purposes and functions (policy 2.1, 2.4.2(5)), read from its
 * public catalogue at `baseUrl` (config CONSENT_URL) within `timeoutMs` (ms).
 * @throws PIPP_UNAVAILABLE (503) when the consent service is unreachable or answers unexpectedly.
 */
export async function fetchCatalogue(baseUrl: string, timeoutMs = 2000): Promise<Catalogue> {
  const call = () => request(new URL(CATALOGUE_PATH, baseUrl), { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  return consentAnswer<Catalogue>(call, isCatalogue, 'catalogue');
}

/**
 * The 200 answer of a call to the consent service, checked against its schema (`what` names it).
 * @throws PIPP_UNAVAILABLE (503) when the service is unreachable or answers anything else: callers fail closed.
 */
async function consentAnswer<T>(call: () => Promise<Dispatcher.ResponseData>, valid: ReturnType<typeof compile>, what: string): Promise<T> {
  let status: number;
  let body: unknown;
  try {
    const res = await call();
    status = res.statusCode;
    body = await res.body.json();
  } catch (err) {
    throw Errors.unavailable(`The consent service could not be reached: ${(err as Error).message}`);
  }
  if (status !== 200 || !valid(body)) {
    const why = status === 200 ? describeErrors(valid.errors) : `HTTP ${status}`;
    throw Errors.unavailable(`The consent service gave no usable ${what} (${why})`);
  }
  return body as T;
}

/**
 * Client of the decision API. Decisions are cached for `cacheTtlMs` and dropped at once when a consent
 * event for the subject arrives (see `consentClientPlugin`). When the consent service cannot answer,
 * it fails closed: `decide` throws a 503 error (PIPP_UNAVAILABLE), never "allowed".
 */
export class ConsentClient {
  private readonly pool: Pool;
  private readonly cache = new Map<string, { decision: Decision; until: number; subjectId: string }>();
  private readonly ttl: number;
  private readonly timeout: number;
  private readonly max: number;

  constructor(private readonly opts: ConsentClientOptions) {
    this.pool = new Pool(opts.baseUrl, { connections: 16, keepAliveTimeout: 30_000 });
    this.ttl = opts.cacheTtlMs ?? 1000;
    this.timeout = opts.timeoutMs ?? 2000;
    this.max = opts.maxEntries ?? 10_000;
  }

  /**
   * May this processing happen? Returns the decision (allowed or not, its basis and clause).
   * @throws PIPP_UNAVAILABLE (503) when the consent service is unreachable or answers unexpectedly.
   */
  async decide(request: DecisionRequest): Promise<Decision> {
    const key = JSON.stringify(request);
    const hit = this.cache.get(key);
    if (hit && hit.until > Date.now()) return hit.decision;
    const decision = await this.fetchDecision(request);
    if (this.cache.size >= this.max) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, { decision, until: Date.now() + this.ttl, subjectId: request.subjectId });
    return decision;
  }

  /** Drops every cached decision about a subject (their consent changed). */
  invalidateSubject(subjectId: string): void {
    for (const [k, v] of this.cache) if (v.subjectId === subjectId) this.cache.delete(k);
  }

  /** Drops every cached decision (a policy version was published, a function shut down). */
  invalidateAll(): void {
    this.cache.clear();
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  private async fetchDecision(request: DecisionRequest): Promise<Decision> {
    return consentAnswer<Decision>(async () => this.pool.request({
      method: 'POST',
      path: DECISIONS_PATH,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await this.opts.token()}` },
      body: JSON.stringify(request),
      headersTimeout: this.timeout,
      bodyTimeout: this.timeout,
    }), isDecision, 'decision');
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    consent: ConsentClient;
  }
}

/**
 * Decorates `app.consent` and keeps its cache honest: a broadcast consumer drops a subject's cached
 * decisions on `privacy.consent.changed`, and all of them on `privacy.policy.published` and
 * `privacy.function.shutdown`. Register after the service kit's infrastructure plugin.
 */
export const consentClientPlugin = fp(async function consentClient(app: FastifyInstance, opts: ConsentClientOptions) {
  const client = new ConsentClient(opts);
  app.decorate('consent', client);
  app.kafka.consume({
    name: 'consent-cache',
    broadcast: true,
    dedupe: false,
    fromBeginning: false,
    handlers: {
      'privacy.consent.changed': async (event) => client.invalidateSubject(event.payload.subjectId),
      'privacy.policy.published': async () => client.invalidateAll(),
      'privacy.function.shutdown': async () => client.invalidateAll(),
    },
  });
  app.addHook('onClose', async () => client.close());
}, { name: 'pipp-consent-client', dependencies: ['pipp-kafka'] });
