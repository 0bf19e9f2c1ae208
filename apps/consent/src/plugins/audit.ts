import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { randomUUID } from 'node:crypto';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Leaves an audit record (who, what, which subject, when; ids only, never PI in clear) for staff
     * access to a subject's consent data and for staff changes (DESIGN.md security model).
     */
    audit(request: FastifyRequest, action: string, on?: { subjectId?: string | undefined; target?: string | undefined }): Promise<void>;
  }
}

export const auditPlugin = fp(async function audit(app: FastifyInstance) {
  app.decorate('audit', async (request: FastifyRequest, action: string, on: { subjectId?: string | undefined; target?: string | undefined } = {}) => {
    await app.models.audit.create({
      _id: randomUUID(), at: new Date(), actor: { role: request.user.role, id: request.user.sub }, action,
      ...(on.subjectId ? { subjectId: on.subjectId } : {}), ...(on.target ? { target: on.target } : {}), requestId: String(request.id),
    });
  });
}, { name: 'consent-audit', dependencies: ['consent-models'] });
