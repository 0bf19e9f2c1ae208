import { eventTypesOf } from '@pipp/contracts';
import { createFastify, infrastructurePlugin, legalHoldsPlugin } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from './config.js';
import { registerFanoutConsumers } from './events/fanout.js';
import { registerContactConsumer } from './events/contacts.js';
import { registerErasureConsumers } from './events/erasure.js';
import { registerRequestConsumers } from './events/requests.js';
import { auditPlugin } from './plugins/audit.js';
import { channelsPlugin } from './plugins/channels.js';
import { modelsPlugin } from './plugins/models.js';
import { notifierPlugin } from './plugins/notifier.js';
import routes from './routes/index.js';

export const SERVICE = 'incident';
export const PREFIX = '/v1/incident';

/**
 * The incident service as a Fastify plugin: security incidents, notifications on every channel,
 * announcements, regulator records and user reports (policy 5.4.2, 5.4.1, 2.2, VI, 2.4.2(5); PIPL art. 57).
 */
export async function incidentApp(app: FastifyInstance, opts: { config: Config }) {
  await app.register(infrastructurePlugin, {
    service: SERVICE,
    config: opts.config,
    topics: eventTypesOf(SERVICE),
    openapi: { prefix: PREFIX, title: 'PIPP incident service', description: 'Security incidents, notifications on every channel, announcements, regulator records and user reports (policy 5.4.2, 5.4.1, 2.2).' },
  });
  await app.register(modelsPlugin);
  await app.register(auditPlugin);
  await app.register(channelsPlugin, { config: opts.config });
  await app.register(notifierPlugin, { config: opts.config });
  registerContactConsumer(app, opts.config);
  registerRequestConsumers(app, opts.config);
  registerFanoutConsumers(app);
  await app.register(legalHoldsPlugin, {}); // sweeps leave what legal holds cover (policy 4.1)
  registerErasureConsumers(app, opts.config);
  await app.register(routes, { prefix: PREFIX, config: opts.config });
}

/** Builds the service (tests call this and `inject()`; server.ts calls it and listens). */
export async function buildApp(config: Config) {
  const app = createFastify({ service: SERVICE, config });
  await app.register(fp(incidentApp, { name: 'pipp-incident' }), { config });
  return app;
}
