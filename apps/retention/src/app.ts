import { eventTypesOf } from '@pipp/contracts';
import { createFastify, infrastructurePlugin } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from './config.js';
import routes from './routes/index.js';

export const SERVICE = 'retention';
export const PREFIX = '/v1/retention';

/**
 * The retention service as a Fastify plugin: Retention periods, erasure requests and the erasure saga, legal holds, backups, expiry sweeps, data residency and business shutdown (policy 2.4.2(5), 4.1, 4.2, 5.1–5.3).
 */
export async function retentionApp(app: FastifyInstance, opts: { config: Config }) {
  await app.register(infrastructurePlugin, {
    service: SERVICE,
    config: opts.config,
    topics: eventTypesOf(SERVICE),
    openapi: { prefix: PREFIX, title: 'PIPP retention service', description: 'Retention periods, erasure requests and the erasure saga, legal holds, backups, expiry sweeps, data residency and business shutdown (policy 2.4.2(5), 4.1, 4.2, 5.1–5.3).' },
  });
  await app.register(routes, { prefix: PREFIX, config: opts.config });
}

/** Builds the service (tests call this and `inject()`; server.ts calls it and listens). */
export async function buildApp(config: Config) {
  const app = createFastify({ service: SERVICE, config });
  await app.register(fp(retentionApp, { name: 'pipp-retention' }), { config });
  return app;
}
