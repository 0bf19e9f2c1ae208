import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import catalogueRoutes from './catalogue/index.js';
import consentRoutes from './consents/index.js';
import decisionRoutes from './decisions/index.js';
import policyRoutes from './policies/index.js';
import proofRoutes from './proofs/index.js';

/** Registers one route plugin per resource of the consent service, under /v1/consent. */
export default async function routes(app: FastifyInstance, opts: { config: Config }) {
  await app.register(decisionRoutes);
  await app.register(policyRoutes);
  await app.register(catalogueRoutes);
  await app.register(consentRoutes, { config: opts.config });
  await app.register(proofRoutes, { config: opts.config });
}
