import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';

/** Registers one route plugin per resource of the gateway service, under /v1/gateway. */
export default async function routes(_app: FastifyInstance, _opts: { config: Config }) {
  // Resource route plugins are registered here.
}
