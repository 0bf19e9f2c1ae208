import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { CountryCode, ServiceNameSchema, Timestamp } from '@pipp/contracts';
import { Type } from '@sinclair/typebox';
import { errorResponses } from '../schemas.js';

const Declaration = Type.Object({
  service: ServiceNameSchema,
  homeRegion: CountryCode,
  stores: Type.Array(Type.Object({ store: Type.String(), location: CountryCode })),
  exception: Type.Optional(Type.Object({ clause: Type.String(), reference: Type.String() })),
  flagged: Type.Boolean(),
  assessment: Type.String(),
  firstSeenAt: Timestamp,
  lastSeenAt: Timestamp,
  instances: Type.Integer({ description: 'Start-ups that declared this configuration' }),
});

/**
 * Data residency report (policy 5.3, PIPL art. 40): `GET /v1/retention/admin/residency` (operator,
 * dpo): per service, where its stores are and whether that breaks 5.3 (flagged: outside the home
 * region without a 5.3.1–5.3.3 exception and its evidence; undeclared: never announced).
 */
const residency: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/admin/residency', {
    preHandler: app.requireRole('operator', 'dpo'),
    schema: {
      summary: 'Where each service stores PI, and what breaks policy 5.3 (operator, dpo)', tags: ['residency'],
      response: {
        200: Type.Object({
          homeRegion: CountryCode,
          flagged: Type.Integer({ description: 'Services flagged or undeclared' }),
          services: Type.Array(Type.Object({
            service: ServiceNameSchema,
            status: Type.Union(['compliant', 'excepted', 'flagged', 'undeclared'].map((s) => Type.Literal(s))),
            summary: Type.String(),
            declarations: Type.Array(Declaration),
          })),
        }),
        ...errorResponses(),
      },
    },
  }, async () => {
    const services = await app.residencyReport.report();
    return {
      homeRegion: app.residency.homeRegion,
      flagged: services.filter((s) => s.status === 'flagged' || s.status === 'undeclared').length,
      services: services.map((s) => ({
        ...s,
        declarations: s.declarations.map((d) => ({ ...d, firstSeenAt: d.firstSeenAt.toISOString(), lastSeenAt: d.lastSeenAt.toISOString() })),
      })),
    };
  });
};

export default residency;
