import { VisibleText } from '@pipp/contracts';
import { Errors } from '@pipp/service-kit';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Config } from '../../config.js';
import { judgePassword } from '../../domain/password.js';
import { normalizeText } from '../../domain/profile.js';
import { IdentityErrors } from '../../errors.js';
import { newId } from '../../plugins/keys.js';
import { staffContactEntry } from '../../plugins/staff.js';
import { errors, PasswordInput, PhoneInput } from '../../schemas.js';
import { requirePhone } from '../helpers.js';

const StaffView = Type.Object({ staffId: Type.String(), role: Type.String(), displayName: Type.String(), active: Type.Boolean(), createdBy: Type.String(), createdAt: Type.String() }, { additionalProperties: false });

/**
 * Staff accounts (DESIGN.md roles operator and DPO). The first DPO comes from config
 * `IDENTITY_BOOTSTRAP_STAFF`; a DPO then manages staff:
 * - `POST /v1/identity/admin/staff` (dpo): `{phone, role, displayName, password}` → 201 `{staffId}`;
 *   409 when the number is already a staff account; 400 PIPP_WEAK_PASSWORD.
 * - `GET /v1/identity/admin/staff` (dpo): the staff list (no numbers).
 * - `DELETE /v1/identity/admin/staff/:staffId` (dpo): deactivates the account and ends its sessions.
 * Staff sign in at `POST /v1/identity/public/staff/sign-in` (phone + password, a code on high risk).
 */
const staffRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, opts) => {
  const { config } = opts;
  app.post('/admin/staff', {
    preHandler: app.requireRole('dpo'),
    schema: {
      tags: ['staff'], summary: 'Create an operator or DPO account', security: [{ bearer: [] }],
      body: Type.Object({ phone: PhoneInput, role: Type.Union([Type.Literal('operator'), Type.Literal('dpo')]), displayName: VisibleText(64), password: PasswordInput }, { additionalProperties: false }),
      response: { 201: Type.Object({ staffId: Type.String() }), ...errors(400, 401, 403, 409, 415) },
    },
  }, async (request, reply) => {
    const phone = requirePhone(request.body.phone, config);
    const name = normalizeText(request.body.displayName, 64);
    if (!name.ok) throw Errors.validation(`displayName ${name.reason}`, { details: [{ path: '/body/displayName', message: name.reason }] });
    const verdict = judgePassword(request.body.password, { minScore: Math.max(3, config.PASSWORD_MIN_SCORE), minLength: Math.max(12, config.PASSWORD_MIN_LENGTH), userInputs: [phone, name.value] });
    if (!verdict.ok) throw IdentityErrors.weakPassword(verdict.reason, { clause: '5.4.1', details: [{ path: '/body/password', message: [verdict.reason, ...verdict.suggestions].join(' ') }] });
    const staffId = newId('stf');
    try {
      await app.outbox.insert(app.models.staff, { _id: staffId, phone, role: request.body.role, displayName: name.value, passwordHash: await app.passwords.hash(request.body.password), active: true, createdBy: request.user.sub, createdAt: new Date() }, [staffContactEntry(app, staffId, phone)]);
    } catch (err) {
      if ((err as { code?: number }).code === 11000) throw IdentityErrors.alreadyRegistered('This number already has a staff account');
      throw err;
    }
    request.log.info({ staffId, role: request.body.role, by: request.user.sub }, 'staff account created');
    return reply.code(201).send({ staffId });
  });

  app.get('/admin/staff', {
    preHandler: app.requireRole('dpo'),
    schema: { tags: ['staff'], summary: 'List staff accounts', security: [{ bearer: [] }], response: { 200: Type.Object({ staff: Type.Array(StaffView) }), ...errors(401, 403) } },
  }, async () => {
    const rows = await app.models.staff.find({}).sort({ createdAt: 1 }).lean();
    return { staff: rows.map((s) => ({ staffId: s._id, role: s.role, displayName: s.displayName, active: s.active, createdBy: s.createdBy, createdAt: s.createdAt.toISOString() })) };
  });

  app.delete('/admin/staff/:staffId', {
    preHandler: app.requireRole('dpo'),
    schema: {
      tags: ['staff'], summary: 'Deactivate a staff account', security: [{ bearer: [] }],
      params: Type.Object({ staffId: Type.String({ pattern: '^stf_[0-9a-f]{32}$' }) }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...errors(401, 403, 404) },
    },
  }, async (request, reply) => {
    if (request.params.staffId === request.user.sub) throw IdentityErrors.badRequest('You cannot deactivate your own account');
    const res = await app.outbox.update(app.models.staff, { _id: request.params.staffId, active: true }, { $set: { active: false } }, [staffContactEntry(app, request.params.staffId, null)]);
    if (!res) throw IdentityErrors.notFound('No such active staff account');
    await app.sessions.revokeAll(request.params.staffId, 'revoked-by-operator');
    return reply.code(204).send(null);
  });
};
export default staffRoutes;
