import { eventTypesOf } from '@pipp/contracts';
import { createFastify, infrastructurePlugin } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from './config.js';
import routes from './routes/index.js';

export const SERVICE = 'incident';
export const PREFIX = '/v1/incident';

/**
 * The incident service as a Fastify plugin: Security incidents, notifications on every channel, announcements, regulator records and user reports (policy 5.4.2, 5.4.1, 2.2).
 */
export async function incidentApp(app: FastifyInstance, opts: { config: Config }) {
  await app.register(infrastructurePlugin, {
    service: SERVICE,
    config: opts.config,
    topics: eventTypesOf(SERVICE),
    openapi: { prefix: PREFIX, title: 'PIPP incident service', description: 'Security incidents, notifications on every channel, announcements, regulator records and user reports (policy 5.4.2, 5.4.1, 2.2).' },
  });
  await app.register(routes, { prefix: PREFIX, config: opts.config });
}

/** Builds the service (tests call this and `inject()`; server.ts calls it and listens). */
export async function buildApp(config: Config) {
  const app = createFastify({ service: SERVICE, config });
  await app.register(fp(incidentApp, { name: 'pipp-incident' }), { config });
  return app;
}
