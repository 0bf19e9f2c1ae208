import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { randomUUID } from 'node:crypto';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Writes an audit record (DESIGN.md security model: who, what, which record, whose data): every
     * change to an incident, notification or report, and every staff read of a subject's reports.
     * Field names only, never values.
     */
    audit(request: FastifyRequest, action: string, target: { type: string; id: string }, extra?: { subjectId?: string | null; fields?: string[] }): Promise<void>;
  }
}

export const auditPlugin = fp(async function audit(app: FastifyInstance) {
  app.decorate('audit', async (request: FastifyRequest, action: string, target: { type: string; id: string }, extra: { subjectId?: string | null; fields?: string[] } = {}) => {
    const user = request.user as { sub?: string; role?: string } | undefined;
    await app.models.audit.create({
      _id: randomUUID(), at: new Date(), actor: user?.sub ?? 'anonymous', role: user?.role ?? 'none', action, target,
      ...(extra.subjectId ? { subjectId: extra.subjectId } : {}), ...(extra.fields ? { fields: extra.fields } : {}),
    });
  });
}, { name: 'incident-audit', dependencies: ['incident-models'] });
