import { eventTypesOf } from '@pipp/contracts';
import { createFastify, infrastructurePlugin } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from './config.js';
import routes from './routes/index.js';

export const SERVICE = 'identity';
export const PREFIX = '/v1/identity';

/**
 * The identity service as a Fastify plugin: Phone-first accounts, verified sign-in, sessions and tokens, profile and account settings, device risk, activity logs and leak reports (policy 2.4.1, 4.1.2, 5.4.1).
 */
export async function identityApp(app: FastifyInstance, opts: { config: Config }) {
  await app.register(infrastructurePlugin, {
    service: SERVICE,
    config: opts.config,
    topics: eventTypesOf(SERVICE),
    openapi: { prefix: PREFIX, title: 'PIPP identity service', description: 'Phone-first accounts, verified sign-in, sessions and tokens, profile and account settings, device risk, activity logs and leak reports (policy 2.4.1, 4.1.2, 5.4.1).' },
  });
  await app.register(routes, { prefix: PREFIX, config: opts.config });
}

/** Builds the service (tests call this and `inject()`; server.ts calls it and listens). */
export async function buildApp(config: Config) {
  const app = createFastify({ service: SERVICE, config });
  await app.register(fp(identityApp, { name: 'pipp-identity' }), { config });
  return app;
}
