import { Errors } from '@pipp/service-kit';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Config } from '../../config.js';
import { contactChannels } from '../../domain/contact.js';
import { IdentityErrors } from '../../errors.js';
import { newId } from '../../plugins/keys.js';
import { CodeInput, errors, PasswordInput, PhoneInput, SubjectIdParam } from '../../schemas.js';
import { requirePhone } from '../helpers.js';
import { reauthenticate } from '../passwords/index.js';

/**
 * Changing the mobile number (policy 2.4.1(1)i: the number is the verified identity; 4.1 correct):
 * - `POST /v1/identity/subjects/:subjectId/phone-change` (the subject): re-authenticate (password, or a
 *   `reauth` code), name the new number; a `phone-change` code goes to the new number. 202 `{changeId}`,
 *   the same whether or not the new number already has an account.
 * - `POST …/phone-change/:changeId/confirm` with that code: the number changes, other sessions end
 *   (`privacy.session.revoked`, phone-changed), `privacy.subject.contact-changed` is published, audited.
 *   409 PIPP_ALREADY_REGISTERED when the new number has an account (its holder just proved it).
 */
const phoneRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, opts) => {
  const { config } = opts;
  app.post('/subjects/:subjectId/phone-change', {
    preHandler: app.requireSubject('subjectId', []),
    schema: {
      tags: ['profile'], summary: 'Start changing the mobile number', security: [{ bearer: [] }], params: SubjectIdParam,
      body: Type.Object({ newPhone: PhoneInput, currentPassword: Type.Optional(PasswordInput), code: Type.Optional(CodeInput) }, { additionalProperties: false }),
      response: { 202: Type.Object({ changeId: Type.String(), expiresIn: Type.Integer() }), ...errors(400, 401, 403, 404, 415, 429) },
    },
  }, async (request, reply) => {
    const { subjectId } = request.params;
    const newPhone = requirePhone(request.body.newPhone, config, 'newPhone');
    const account = await app.models.accounts.findOne({ _id: subjectId, status: 'active' }).select('+passwordHash').lean();
    if (!account) throw IdentityErrors.notFound('No such account');
    await reauthenticate(app, account, request.body);
    if (newPhone === account.phone) throw Errors.validation('This is already your number', { details: [{ path: '/body/newPhone', message: 'unchanged' }] });
    const sent = await app.security.issueCode(newPhone, 'phone-change', request.ip);
    const changeId = newId('pch');
    const now = new Date();
    // The code just sent replaced any earlier one to this number: it confirms this change only (an
    // earlier pending change to the number, of this account or another, could otherwise take it).
    await app.models.phoneChanges.updateMany({ newPhone, consumed: false }, { $set: { consumed: true } });
    await app.models.phoneChanges.create({ _id: changeId, subjectId, newPhone, expiresAt: new Date(now.getTime() + sent.expiresIn * 1000), consumed: false, purgeAt: new Date(now.getTime() + 2 * sent.expiresIn * 1000) });
    return reply.code(202).send({ changeId, expiresIn: sent.expiresIn });
  });

  app.post('/subjects/:subjectId/phone-change/:changeId/confirm', {
    preHandler: app.requireSubject('subjectId', []),
    schema: {
      tags: ['profile'], summary: 'Confirm the new mobile number with its code', security: [{ bearer: [] }],
      params: Type.Object({ subjectId: SubjectIdParam.properties.subjectId, changeId: Type.String({ pattern: '^pch_[0-9a-f]{32}$' }) }, { additionalProperties: false }),
      body: Type.Object({ code: CodeInput }, { additionalProperties: false }),
      response: { 200: Type.Object({ phone: Type.String() }), ...errors(400, 401, 403, 404, 409, 415) },
    },
  }, async (request) => {
    const { subjectId, changeId } = request.params;
    const change = await app.models.phoneChanges.findOne({ _id: changeId, subjectId, consumed: false, expiresAt: { $gt: new Date() } }).lean();
    if (!change) throw IdentityErrors.notFound('No such pending number change; start again');
    if (!await app.security.verifyCode(change.newPhone, 'phone-change', request.body.code)) throw IdentityErrors.invalidCode();
    await app.models.phoneChanges.updateOne({ _id: changeId }, { $set: { consumed: true } });
    const account = await app.models.accounts.findOne({ _id: subjectId, status: 'active' }).lean();
    if (!account) throw IdentityErrors.notFound('No such account');
    try {
      await app.outbox.update(app.models.accounts, { _id: subjectId, status: 'active' }, { $set: { phone: change.newPhone, updatedAt: new Date() } }, [
        app.outbox.entry('privacy.subject.contact-changed', { subject: subjectId, payload: { subjectId, channels: contactChannels(change.newPhone, account.profile ?? {}), preferred: ['sms'] } }),
      ]);
    } catch (err) {
      if ((err as { code?: number }).code === 11000) throw IdentityErrors.alreadyRegistered('The new number already has an account');
      throw err;
    }
    await app.models.phoneChanges.deleteOne({ _id: changeId });
    await app.sessions.revokeAll(subjectId, 'phone-changed', request.user.sid);
    await app.audit.record(request, subjectId, 'phone-changed', ['phone']);
    return { phone: change.newPhone };
  });
};
export default phoneRoutes;
