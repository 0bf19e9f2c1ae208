import { eventTypesOf } from '@pipp/contracts';
import { createFastify, infrastructurePlugin } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from './config.js';
import { registerOrchestrator } from './events/orchestrator.js';
import { registerParticipant } from './events/participant.js';
import { registerScheduler } from './events/scheduler.js';
import { auditPlugin } from './plugins/audit.js';
import { backupsPlugin } from './plugins/backups.js';
import { erasuresPlugin } from './plugins/erasures.js';
import { keptPlugin } from './plugins/kept.js';
import { modelsPlugin } from './plugins/models.js';
import { policiesPlugin } from './plugins/policies.js';
import { residencyReportPlugin } from './plugins/residency.js';
import { shutdownsPlugin } from './plugins/shutdowns.js';
import { sweepsPlugin } from './plugins/sweeps.js';
import routes from './routes/index.js';
import type {} from './types.js';

export const SERVICE = 'retention';
export const PREFIX = '/v1/retention';

/**
 * The retention service as a Fastify plugin: retention periods, erasure requests and the erasure saga,
 * legal holds, backups, expiry sweeps, data residency and business shutdown (policy 2.4.2(5), 4.1,
 * 4.2, 5.1–5.3).
 */
export async function retentionApp(app: FastifyInstance, opts: { config: Config }) {
  await app.register(infrastructurePlugin, {
    service: SERVICE,
    config: opts.config,
    topics: eventTypesOf(SERVICE),
    openapi: { prefix: PREFIX, title: 'PIPP retention service', description: 'Retention periods, erasure requests and the erasure saga, legal holds, backups, expiry sweeps, data residency and business shutdown (policy 2.4.2(5), 4.1, 4.2, 5.1–5.3).' },
  });
  await app.register(modelsPlugin);
  await app.register(auditPlugin);
  await app.register(policiesPlugin);
  await app.register(erasuresPlugin, { config: opts.config });
  await app.register(keptPlugin);
  await app.register(backupsPlugin, { config: opts.config });
  await app.register(sweepsPlugin, { config: opts.config });
  await app.register(shutdownsPlugin, { config: opts.config });
  await app.register(residencyReportPlugin);
  registerParticipant(app, opts.config.KAFKA_PARTITIONS);
  registerOrchestrator(app, opts.config);
  registerScheduler(app, opts.config.SAGA_TICK_MS);
  await app.register(routes, { prefix: PREFIX, config: opts.config });
}

/** Builds the service (tests call this and `inject()`; server.ts calls it and listens). */
export async function buildApp(config: Config) {
  const app = createFastify({ service: SERVICE, config });
  await app.register(fp(retentionApp, { name: 'pipp-retention' }), { config });
  return app;
}
