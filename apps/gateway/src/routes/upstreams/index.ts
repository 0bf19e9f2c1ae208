import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ErrorResponseSchema } from '@pipp/contracts';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';

const Status = Type.Object({
  upstreams: Type.Array(Type.Object({
    service: Type.String(),
    url: Type.String(),
    circuit: Type.Union([Type.Literal('closed'), Type.Literal('open'), Type.Literal('half-open')]),
    document: Type.Object({ ok: Type.Boolean(), fetchedAt: Type.Optional(Type.String()), error: Type.Optional(Type.String()) }),
  })),
  openapi: Type.Object({ valid: Type.Boolean(), errors: Type.Array(Type.String()) }),
  audit: Type.Object({ pending: Type.Integer({ description: 'records waiting to be written' }), failure: Type.Optional(Type.String()) }),
}, { additionalProperties: false });

/**
 * GET /v1/gateway/admin/upstreams — operators and the DPO: each upstream's circuit state and
 * OpenAPI document status, whether the combined document validates, and the audit writer's backlog.
 */
export default async function upstreamRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.get('/admin/upstreams', {
    preHandler: app.requireRole('operator', 'dpo'),
    schema: {
      summary: 'State of the upstream services, the combined document and the audit writer',
      'x-pipp-roles': ['operator', 'dpo'],
      response: { 200: Status, 401: ErrorResponseSchema, 403: ErrorResponseSchema, 429: ErrorResponseSchema },
    } as never,
  }, async () => {
    const sources = new Map(app.apiDocs.sources().map((s) => [s.service, s]));
    return {
      upstreams: app.upstreams.list.map((u) => {
        const s = sources.get(u.service);
        return {
          service: u.service, url: u.url, circuit: u.breaker.state,
          document: { ok: Boolean(s?.ok), ...(s?.fetchedAt ? { fetchedAt: s.fetchedAt } : {}), ...(s?.error ? { error: s.error } : {}) },
        };
      }),
      openapi: app.apiDocs.validation(),
      audit: { pending: app.audit.writer.pending, ...(app.audit.writer.failure ? { failure: app.audit.writer.failure } : {}) },
    };
  });
}
