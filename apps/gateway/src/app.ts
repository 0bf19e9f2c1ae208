import { eventTypesOf } from '@pipp/contracts';
import { createFastify, infrastructurePlugin } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { readFileSync } from 'node:fs';
import type { Config } from './config.js';
import { shutdownEventsPlugin } from './events/shutdowns.js';
import { apiDocsPlugin } from './plugins/api-docs.js';
import { auditPlugin } from './plugins/audit.js';
import { edgePlugin } from './plugins/edge.js';
import { shutdownsPlugin } from './plugins/shutdowns.js';
import { upstreamsPlugin } from './plugins/upstreams.js';
import docsRoutes from './routes/docs/index.js';
import routes from './routes/index.js';
import proxyRoutes from './routes/proxy/index.js';

export const SERVICE = 'gateway';
export const PREFIX = '/v1/gateway';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Options of the app that are not configuration (never set from the environment). */
export interface GatewayOptions {
  /**
   * Verify access-token signatures (default true). `false` exists only for the benchmark, which
   * measures what verification costs; tokens are then decoded unverified.
   */
  verifyTokens?: boolean;
}

/**
 * The gateway as a Fastify plugin: one public API for every service (routing, authentication,
 * roles, ownership, rate limits, the combined OpenAPI document and the audit trail). Its own database
 * (`pipp_gateway`) holds only the append-only audit records and the functions shut down.
 */
export async function gatewayApp(app: FastifyInstance, opts: { config: Config } & GatewayOptions) {
  const { config } = opts;
  await app.register(infrastructurePlugin, {
    service: SERVICE,
    config,
    topics: eventTypesOf(SERVICE),
    openapi: { prefix: PREFIX, title: 'PIPP gateway service', description: 'One public API: routing, authentication, roles, rate limits, OpenAPI docs and the audit trail.', version: VERSION },
  });
  await app.register(auditPlugin, { config });
  await app.register(shutdownsPlugin);
  await app.register(shutdownEventsPlugin);
  await app.register(upstreamsPlugin, { config });
  await app.register(edgePlugin, { config });
  await app.register(apiDocsPlugin, { config, version: VERSION });
  await app.register(docsRoutes);
  await app.register(routes, { prefix: PREFIX, config });
  await app.register(proxyRoutes, { config, verifyTokens: opts.verifyTokens ?? true });
}

/** The trusted proxies of TRUSTED_PROXIES as Fastify's `trustProxy` (false when none). */
export function trustedProxies(value: string): string[] | false {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  return list.length ? list : false;
}

/** Builds the gateway (tests call this and `inject()`; server.ts calls it and listens). */
export async function buildApp(config: Config, options: GatewayOptions = {}) {
  // Slow clients (slowloris) cannot hold connections: a request must arrive whole within
  // CLIENT_TIMEOUT_MS (the kit gives it to the HTTP server, checked every second: 408 in the one error
  // shape), and a connection may not stay silent for much longer either. The silence bound is 2 s longer,
  // so that a request cut off half-way gets its 408 first (at the same bound it was closed without one).
  const app = createFastify({
    service: SERVICE, config, bodyLimit: config.BODY_LIMIT_BYTES, trustProxy: trustedProxies(config.TRUSTED_PROXIES), requestTimeoutMs: config.CLIENT_TIMEOUT_MS,
  });
  await app.register(fp(gatewayApp, { name: 'pipp-gateway' }), { config, ...options });
  app.server.setTimeout(config.CLIENT_TIMEOUT_MS + 2000);
  return app;
}
