import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { classifyPath, PathError } from '../domain/paths.js';
import { GatewayErrors } from '../errors.js';
import auditRecordRoutes from './audit-records/index.js';
import upstreamRoutes from './upstreams/index.js';

const OWN = new Set(['gateway']);

/**
 * Registers the gateway's own resources under /v1/gateway (the audit trail, upstream status). Their
 * paths follow the same URL convention and are classified for the audit record; the kit's guards
 * (`requireRole`, `requireSubject`) decide access.
 */
export default async function routes(app: FastifyInstance, _opts: { config: Config }) {
  app.addHook('onRequest', async (request) => {
    try {
      request.gw.path = classifyPath(request.url.split('?')[0]!, OWN);
    } catch (err) {
      if (err instanceof PathError) throw GatewayErrors.badPath(err.message);
      throw err;
    }
  });
  await app.register(auditRecordRoutes);
  await app.register(upstreamRoutes);
}
