import { eventTypesOf } from '@pipp/contracts';
import { createFastify, infrastructurePlugin } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from './config.js';
import routes from './routes/index.js';

export const SERVICE = 'data-sharing';
export const PREFIX = '/v1/data-sharing';

/**
 * The data-sharing service as a Fastify plugin: Recipients, sharing, public disclosure, indirect collection, cross-border transfers, anonymized releases and deletion notices (policy 1.2, 2.4.2(1)(3), 3, 4.2, 5.3).
 */
export async function dataSharingApp(app: FastifyInstance, opts: { config: Config }) {
  await app.register(infrastructurePlugin, {
    service: SERVICE,
    config: opts.config,
    topics: eventTypesOf(SERVICE),
    openapi: { prefix: PREFIX, title: 'PIPP data-sharing service', description: 'Recipients, sharing, public disclosure, indirect collection, cross-border transfers, anonymized releases and deletion notices (policy 1.2, 2.4.2(1)(3), 3, 4.2, 5.3).' },
  });
  await app.register(routes, { prefix: PREFIX, config: opts.config });
}

/** Builds the service (tests call this and `inject()`; server.ts calls it and listens). */
export async function buildApp(config: Config) {
  const app = createFastify({ service: SERVICE, config });
  await app.register(fp(dataSharingApp, { name: 'pipp-data-sharing' }), { config });
  return app;
}
