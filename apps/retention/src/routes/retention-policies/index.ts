import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { SafeInteger } from '@pipp/contracts';
import { Type } from '@sinclair/typebox';
import { actorOf } from '../../plugins/audit.js';
import { PolicyBody, PolicyIdParams, PolicyVersionView, PolicyView, errorResponses } from '../schemas.js';
import { policyVersionView, policyView } from '../views.js';

/**
 * Retention policies (policy 5.1, 5.2): `/v1/retention/admin/retention-policies…`. Operators and the
 * DPO read them; only the DPO changes them (versioned, audited, conditional on the version read).
 * Ids: `<category>` (the general policy) or `<category>@<service>` (an override for one holder).
 */
const retentionPolicies: FastifyPluginAsyncTypebox = async (app) => {
  const read = app.requireRole('operator', 'dpo');
  const write = app.requireRole('dpo');

  app.get('/admin/retention-policies', {
    preHandler: read,
    schema: { summary: 'Every retention policy (operator, dpo)', tags: ['retention-policies'], response: { 200: Type.Object({ items: Type.Array(PolicyView) }), ...errorResponses() } },
  }, async () => ({ items: (await app.policies.list()).map(policyView) }));

  app.get('/admin/retention-policies/:policyId', {
    preHandler: read,
    schema: { summary: 'One retention policy (operator, dpo)', tags: ['retention-policies'], params: PolicyIdParams, response: { 200: PolicyView, ...errorResponses(400, 404) } },
  }, async (request) => policyView(await app.policies.get(request.params.policyId)));

  app.get('/admin/retention-policies/:policyId/versions', {
    preHandler: read,
    schema: { summary: 'Every version of a retention policy, newest first (operator, dpo)', tags: ['retention-policies'], params: PolicyIdParams, response: { 200: Type.Object({ items: Type.Array(PolicyVersionView) }), ...errorResponses(400, 404) } },
  }, async (request) => ({ items: (await app.policies.versions(request.params.policyId)).map(policyVersionView) }));

  /**
   * Create or change a policy (dpo). Errors: 400 PIPP_RETENTION_POLICY_INVALID (clause 5.2, e.g.
   * criterion 5.2.3 without the law cited); 404 for an id naming no category; 409
   * PIPP_RETENTION_POLICY_VERSION_CONFLICT when it changed since `expectedVersion`.
   */
  app.put('/admin/retention-policies/:policyId', {
    preHandler: write,
    schema: { summary: 'Create or change a retention policy (dpo)', tags: ['retention-policies'], params: PolicyIdParams, body: PolicyBody, response: { 200: PolicyView, ...errorResponses(400, 404, 409) } },
  }, async (request) => {
    const { expectedVersion, note, keepOnErasure, ...rest } = request.body;
    return policyView(await app.policies.put(request.params.policyId, { ...rest, keepOnErasure: keepOnErasure ?? false } as never, expectedVersion, actorOf(request.user), note));
  });

  /** Delete a service override (dpo); general policies can only be edited (409 PIPP_RETENTION_POLICY_REQUIRED). */
  app.delete('/admin/retention-policies/:policyId', {
    preHandler: write,
    schema: {
      summary: 'Delete a service override of a retention policy (dpo)', tags: ['retention-policies'], params: PolicyIdParams,
      querystring: Type.Object({ expectedVersion: SafeInteger({ minimum: 1 }) }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...errorResponses(400, 404, 409) },
    },
  }, async (request, reply) => {
    await app.policies.remove(request.params.policyId, request.query.expectedVersion, actorOf(request.user));
    return reply.code(204).send(null);
  });
};

export default retentionPolicies;
