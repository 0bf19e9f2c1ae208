import { eventTypesOf } from '@pipp/contracts';
import { createFastify, infrastructurePlugin } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from './config.js';
import routes from './routes/index.js';

export const SERVICE = 'gateway';
export const PREFIX = '/v1/gateway';

/**
 * The gateway service as a Fastify plugin: One public API: routing, authentication, roles, rate limits, OpenAPI docs and the audit trail.
 */
export async function gatewayApp(app: FastifyInstance, opts: { config: Config }) {
  await app.register(infrastructurePlugin, {
    service: SERVICE,
    config: opts.config,
    topics: eventTypesOf(SERVICE),
    mongo: false,
    openapi: { prefix: PREFIX, title: 'PIPP gateway service', description: 'One public API: routing, authentication, roles, rate limits, OpenAPI docs and the audit trail.' },
  });
  await app.register(routes, { prefix: PREFIX, config: opts.config });
}

/** Builds the service (tests call this and `inject()`; server.ts calls it and listens). */
export async function buildApp(config: Config) {
  const app = createFastify({ service: SERVICE, config });
  await app.register(fp(gatewayApp, { name: 'pipp-gateway' }), { config });
  return app;
}
