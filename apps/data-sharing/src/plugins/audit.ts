import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { randomUUID } from 'node:crypto';

/**
 * Audit records of access to a data subject's records by someone other than the subject (operators,
 * the DPO, services): who (role and id), what (method and route), whose (subject id), the outcome, and
 * why when the caller says so (`x-access-reason`, up to 200 characters). Written after the response;
 * a failure to write is logged, never hidden (DESIGN.md security model).
 */
export const auditPlugin = fp(async function audit(app: FastifyInstance) {
  app.addHook('onResponse', async (request, reply) => {
    const subjectId = (request.params as Record<string, string> | undefined)?.subjectId;
    const user = (request as { user?: unknown }).user as { role?: string; sub?: string } | undefined;
    if (!subjectId || !user?.role || user.role === 'subject') return;
    const reason = request.headers['x-access-reason'];
    try {
      await app.models.audit.create({
        _id: randomUUID(), at: new Date(), actor: { role: user.role, actorId: user.sub ?? '' }, action: request.method,
        route: request.routeOptions.url ?? '', subjectId, status: reply.statusCode,
        ...(typeof reason === 'string' && reason ? { reason: reason.slice(0, 200) } : {}),
      });
    } catch (err) {
      request.log.error({ err }, 'could not write the audit record');
    }
  });
}, { name: 'pipp-ds-audit', dependencies: ['pipp-ds-models'] });
