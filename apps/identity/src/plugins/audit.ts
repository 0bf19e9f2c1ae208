import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Errors } from '@pipp/service-kit';
import type { Config } from '../config.js';
import { IdentityErrors } from '../errors.js';
import { newId } from './keys.js';

const DAY_MS = 86_400_000;

export interface Audit {
  /**
   * Records who did what to a subject's account (policy 4.1.2; DESIGN.md: every read or change of
   * someone's PI by an operator or service leaves an audit record). Holds field names, never values.
   */
  record(request: FastifyRequest | null, subjectId: string, action: string, fields?: string[], actor?: { role: string; id: string }): Promise<void>;
  /** Audits a staff or service read of a subject's data (their own reads are not audited). */
  recordAccess(request: FastifyRequest, subjectId: string, what: string): Promise<void>;
  /**
   * The version of a policy document subjects must acknowledge now: the latest published version of
   * `documentId` seen on `privacy.policy.published`; before any, version 1 of `general`.
   * @throws PIPP_POLICY_VERSION_STALE (409, clause preamble) when `ack` is not that version;
   *   PIPP_VALIDATION (400) when no policy document by that id can be acknowledged.
   */
  checkPolicyAck(ack: { documentId: string; version: number }): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    audit: Audit;
  }
}

export const auditPlugin = fp(async function audit(app: FastifyInstance, opts: { config: Config }) {
  const retentionMs = opts.config.AUDIT_RETENTION_DAYS * DAY_MS;
  const actorOf = (request: FastifyRequest | null) => {
    const user = request?.user as { sub?: string; role?: string } | undefined;
    return user?.sub ? { role: String(user.role), id: user.sub } : { role: 'system', id: 'identity' };
  };
  const reasonOf = (request: FastifyRequest | null) => {
    const r = request?.headers['x-pipp-reason'];
    return typeof r === 'string' ? r.slice(0, 200) : undefined;
  };
  const api: Audit = {
    async record(request, subjectId, action, fields = [], actor) {
      const now = new Date();
      const reason = reasonOf(request);
      await app.models.audit.create({
        _id: newId('aud'), subjectId, at: now, actor: actor ?? actorOf(request), action, fields,
        ...(request ? { requestId: String(request.id) } : {}), ...(reason ? { reason } : {}),
        retentionUntil: new Date(now.getTime() + retentionMs),
      });
    },
    async recordAccess(request, subjectId, what) {
      const user = request.user as { sub?: string; role?: string } | undefined;
      if (!user || user.role === 'subject') return;
      await api.record(request, subjectId, `read:${what}`);
    },
    async checkPolicyAck(ack) {
      const current = await app.models.policyVersions.findById(ack.documentId).lean();
      const version = current?.version ?? (ack.documentId === 'general' ? 1 : undefined);
      if (version === undefined) {
        const message = `is not a policy document you can acknowledge at registration; acknowledge the general policy`;
        throw Errors.validation(`Policy document ${ack.documentId} ${message}`, { clause: 'preamble', details: [{ path: '/body/policyAcknowledged/documentId', message }] });
      }
      if (ack.version !== version) {
        throw IdentityErrors.stalePolicy(`The current version of policy ${ack.documentId} is ${version}; read it and acknowledge that version`, { clause: 'preamble' });
      }
    },
  };
  app.decorate('audit', api);
}, { name: 'identity-audit', dependencies: ['identity-models'] });
