import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

export interface OpenApiOptions {
  /** Path prefix of the service's public routes, e.g. `/v1/consent`. */
  prefix: string;
  title: string;
  description: string;
  version?: string;
}

/**
 * Generates the service's OpenAPI 3 document from its route schemas (@fastify/swagger) and serves it
 * at `<prefix>/openapi.json`; the gateway combines every service's document. Register before routes.
 */
export const openApiPlugin = fp(async function openapi(app: FastifyInstance, opts: OpenApiOptions) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: opts.title, description: opts.description, version: opts.version ?? '1.0.0' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  });
  app.get(`${opts.prefix}/openapi.json`, { schema: { hide: true } }, async () => app.swagger());
}, { name: 'pipp-openapi' });
