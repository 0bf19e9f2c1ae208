import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import FindMyWay, { type HTTPVersion, type Instance as Router } from 'find-my-way';
import type { Config } from '../config.js';
import { CircuitBreaker } from '../domain/circuit.js';
import type { RouteInfo } from '../domain/openapi.js';

/** One upstream service the gateway routes `/v1/<service>/…` to. */
export interface Upstream {
  service: string;
  /** Origin, e.g. `http://127.0.0.1:4002`. */
  url: string;
  breaker: CircuitBreaker;
}

/**
 * The upstream services (from IDENTITY_URL … INCIDENT_URL), their circuit breakers, and the route
 * table learned from their OpenAPI documents (templates, declared roles, functions), matched with
 * find-my-way exactly as the services' own Fastify routers match.
 */
export class UpstreamRegistry {
  readonly list: Upstream[];
  readonly services: ReadonlySet<string>;
  private readonly routers = new Map<string, Router<HTTPVersion.V1>>();

  constructor(config: Config) {
    const entries: [string, string][] = [
      ['identity', config.IDENTITY_URL], ['consent', config.CONSENT_URL], ['data-sharing', config.DATA_SHARING_URL],
      ['retention', config.RETENTION_URL], ['incident', config.INCIDENT_URL],
    ];
    this.list = entries.map(([service, url]) => ({
      service,
      url: url.replace(/\/$/, ''),
      breaker: new CircuitBreaker({ threshold: config.CIRCUIT_FAILURE_THRESHOLD, openMs: config.CIRCUIT_OPEN_MS }),
    }));
    this.services = new Set(this.list.map((u) => u.service));
  }

  get(service: string): Upstream | undefined {
    return this.list.find((u) => u.service === service);
  }

  /** Replaces what is known of a service's routes (after a successful fetch of its document). */
  setRoutes(service: string, routes: RouteInfo[]): void {
    const router = FindMyWay<HTTPVersion.V1>({ caseSensitive: true, ignoreTrailingSlash: false });
    for (const route of routes) {
      try {
        router.on(route.method as 'GET', route.template.replace(/\{([^}]+)\}/g, ':$1'), () => undefined, route);
      } catch { /* a template find-my-way cannot take (or a duplicate): the path-class rules still apply */ }
    }
    this.routers.set(service, router);
  }

  /** The declared route a request matches, if its service declared it. `path` excludes the query. */
  routeOf(service: string, method: string, path: string): RouteInfo | undefined {
    const found = this.routers.get(service)?.find((method === 'HEAD' ? 'GET' : method) as 'GET', path);
    return found?.store as RouteInfo | undefined;
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    upstreams: UpstreamRegistry;
  }
}

/** Decorates `app.upstreams`. */
export const upstreamsPlugin = fp(async function upstreams(app: FastifyInstance, opts: { config: Config }) {
  app.decorate('upstreams', new UpstreamRegistry(opts.config));
}, { name: 'gateway-upstreams' });
