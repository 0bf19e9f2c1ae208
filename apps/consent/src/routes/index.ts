import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';

/** Registers one route plugin per resource of the consent service, under /v1/consent. */
export default async function routes(_app: FastifyInstance, _opts: { config: Config }) {
  // Resource route plugins are registered here.
}
