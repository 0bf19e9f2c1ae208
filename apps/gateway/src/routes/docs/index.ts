import type {} from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

/**
 * The combined OpenAPI document of the public API and Swagger UI (issue: "the gateway serves the
 * combined document and Swagger UI at /docs"): `GET /docs` (UI), `GET /docs/openapi.json` (and
 * Swagger UI's own `/docs/json`, `/docs/yaml`). Anonymous; rate-limited per IP like everything.
 */
export default async function docsRoutes(app: FastifyInstance) {
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    uiConfig: { deepLinking: true, persistAuthorization: false, displayRequestDuration: true },
    transformSpecificationClone: false,
    transformSpecification: () => app.apiDocs.document(),
  });
  app.get('/docs/openapi.json', { schema: { hide: true } }, async () => app.apiDocs.document());
}
