import { eventTypesOf } from '@pipp/contracts';
import { createFastify, infrastructurePlugin, legalHoldsPlugin } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from './config.js';
import { registerConsumers } from './events/consumers.js';
import { auditPlugin } from './plugins/audit.js';
import { legalBasisLogPlugin } from './plugins/legal-basis-log.js';
import { ledgerPlugin } from './plugins/ledger.js';
import { modelsPlugin } from './plugins/models.js';
import { statePlugin } from './plugins/state.js';
import routes from './routes/index.js';

export const SERVICE = 'consent';
export const PREFIX = '/v1/consent';

/**
 * The consent service as a Fastify plugin: policy documents and versions, purposes and functions, the
 * consent ledger, legal bases and the decision API (policy preamble, 1.1, 2.1, 2.4.2, VI).
 */
export async function consentApp(app: FastifyInstance, opts: { config: Config }) {
  await app.register(infrastructurePlugin, {
    service: SERVICE,
    config: opts.config,
    topics: eventTypesOf(SERVICE),
    openapi: { prefix: PREFIX, title: 'PIPP consent service', description: 'Policy versions, purposes and functions, the consent ledger, legal bases and the decision API (policy preamble, 1.1, 2.1, 2.4.2, VI).' },
  });
  await app.register(modelsPlugin);
  await app.register(ledgerPlugin, { config: opts.config });
  await app.register(statePlugin, { config: opts.config });
  await app.register(legalBasisLogPlugin);
  await app.register(auditPlugin);
  await app.register(legalHoldsPlugin, {}); // sweeps leave what legal holds cover (policy 4.1)
  registerConsumers(app, opts.config);
  await app.register(routes, { prefix: PREFIX, config: opts.config });
}

/** Builds the service (tests call this and `inject()`; server.ts calls it and listens). */
export async function buildApp(config: Config) {
  const app = createFastify({ service: SERVICE, config });
  await app.register(fp(consentApp, { name: 'pipp-consent' }), { config });
  return app;
}
