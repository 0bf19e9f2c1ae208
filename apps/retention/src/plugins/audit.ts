import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { randomUUID } from 'node:crypto';
import type { Actor } from './models.js';

export interface AuditEntry {
  actor: Actor;
  /** What was done, e.g. `erasure-request.read`, `retention-policy.update`. */
  action: string;
  target: { type: string; id: string };
  subjectId?: string | undefined;
  /** The policy clause the action serves. */
  clause?: string | undefined;
  /** Ids and counts only, never PI. */
  details?: Record<string, unknown> | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Appends an audit record (DESIGN.md security model: every read or change of someone's PI by an
     * operator or service, and every staff change here, leaves one: who, what, about whom, why).
     */
    audit(entry: AuditEntry): Promise<void>;
  }
}

export const auditPlugin = fp(async function audit(app: FastifyInstance) {
  app.decorate('audit', async (entry: AuditEntry) => {
    await app.store.audit.create({ _id: randomUUID(), at: new Date(), ...entry });
  });
}, { name: 'retention-audit', dependencies: ['retention-models'] });

/** The actor of an authenticated request. */
export function actorOf(user: { role: Actor['role']; sub: string }): Actor {
  return { role: user.role, actorId: user.sub };
}
