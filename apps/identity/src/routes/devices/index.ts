import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Config } from '../../config.js';
import { IdentityErrors } from '../../errors.js';
import { errors, SubjectIdParam } from '../../schemas.js';

/**
 * A subject's devices (policy 2.4.1(3): device information for account security, basis
 * service-security, each record with its retention period):
 * - `GET /v1/identity/subjects/:subjectId/devices`: the subject, or an operator/DPO (audited).
 * - `DELETE …/devices/:deviceId`: ends the device's sessions and forgets it (the next sign-in from it
 *   counts as a new device). 204; 404.
 */
const deviceRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app) => {
  app.get('/subjects/:subjectId/devices', {
    preHandler: app.requireSubject(),
    schema: {
      tags: ['devices'], summary: "List a subject's devices", security: [{ bearer: [] }], params: SubjectIdParam,
      response: { 200: Type.Object({ devices: Type.Array(Type.Object({
        deviceId: Type.String(), userAgent: Type.String(), ipPrefix: Type.String(), firstSeenAt: Type.String(), lastSeenAt: Type.String(),
        signIns: Type.Integer(), purpose: Type.String(), legalBasis: Type.String(), retentionUntil: Type.String(),
      })) }), ...errors(401, 403) },
    },
  }, async (request) => {
    await app.audit.recordAccess(request, request.params.subjectId, 'devices');
    const rows = await app.models.devices.find({ subjectId: request.params.subjectId }).sort({ lastSeenAt: -1 }).lean();
    return { devices: rows.map((d) => ({
      deviceId: d._id, userAgent: d.userAgent, ipPrefix: d.ipPrefix, firstSeenAt: d.firstSeenAt.toISOString(), lastSeenAt: d.lastSeenAt.toISOString(),
      signIns: d.signIns, purpose: d.purpose, legalBasis: d.legalBasis, retentionUntil: app.retentionPeriods.until('device-info', d.lastSeenAt).toISOString(),
    })) };
  });

  app.delete('/subjects/:subjectId/devices/:deviceId', {
    preHandler: app.requireSubject(),
    schema: {
      tags: ['devices'], summary: 'Sign a device out and forget it', security: [{ bearer: [] }],
      params: Type.Object({ subjectId: SubjectIdParam.properties.subjectId, deviceId: Type.String({ pattern: '^dev_[0-9a-f]{40}$' }) }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...errors(401, 403, 404) },
    },
  }, async (request, reply) => {
    const { subjectId, deviceId } = request.params;
    const device = await app.models.devices.findOne({ _id: deviceId, subjectId }).lean();
    if (!device) throw IdentityErrors.notFound('No such device');
    const sessions = await app.models.sessions.find({ subjectId, deviceId, active: true }, { _id: 1 }).lean();
    const reason = request.user.role === 'subject' ? 'revoked-by-subject' as const : 'revoked-by-operator' as const;
    for (const s of sessions) await app.sessions.revoke(subjectId, s._id, reason);
    await app.models.devices.deleteOne({ _id: deviceId, subjectId });
    await app.audit.record(request, subjectId, 'device-removed', ['device-info']);
    return reply.code(204).send(null);
  });
};
export default deviceRoutes;
