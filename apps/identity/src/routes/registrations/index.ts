import { Errors } from '@pipp/service-kit';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { SafeInteger } from '@pipp/contracts';
import { Type } from '@sinclair/typebox';
import type { Config } from '../../config.js';
import { contactChannels } from '../../domain/contact.js';
import { judgePassword } from '../../domain/password.js';
import { normalizeText } from '../../domain/profile.js';
import { IdentityErrors } from '../../errors.js';
import { newId } from '../../plugins/keys.js';
import { CodeInput, DeviceIdInput, errors, PasswordInput, PhoneInput, TokenPairSchema } from '../../schemas.js';
import { requirePhone } from '../helpers.js';

/**
 * `POST /v1/identity/public/registrations` (anonymous): creates a data subject's account from a mobile
 * number proven by a one-time code (policy 2.4.1(1)i), with the policy version the registrant was
 * shown and acknowledged (preamble; announced as `privacy.subject.registered` so consent records it),
 * an optional password (2.4.1(1)ii, judged by strength, 5.4.1) and nickname. Giving either grants the
 * additional `profile` purpose expressly (the event's `grantedPurposes`; consent records the grant, and
 * a later withdrawal erases them); once the `profile` function is shut down they are refused (403
 * PIPP_FUNCTION_SHUT_DOWN, clause 2.4.2(5)). Returns 201 with tokens.
 * Errors: 400 PIPP_INVALID_PHONE / PIPP_INVALID_CODE (same for every number) / PIPP_WEAK_PASSWORD;
 * 409 PIPP_POLICY_VERSION_STALE (clause preamble); 409 PIPP_ALREADY_REGISTERED, only once the code
 * proved the caller holds the number. Concurrent registrations of one number make one account (unique
 * E.164 index; the code verifies once).
 */
const registrationRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, opts) => {
  const { config } = opts;
  app.post('/public/registrations', {
    schema: {
      tags: ['registration'],
      summary: 'Register with a verified mobile number',
      body: Type.Object({
        phone: PhoneInput,
        code: CodeInput,
        policyAcknowledged: Type.Object({
          documentId: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:-]+$' }),
          version: SafeInteger({ minimum: 1 }),
        }, { additionalProperties: false }),
        password: Type.Optional(PasswordInput),
        nickname: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
        deviceId: Type.Optional(DeviceIdInput),
      }, { additionalProperties: false }),
      response: { 201: TokenPairSchema, ...errors(400, 409, 415, 429, 503) },
    },
  }, async (request, reply) => {
    const body = request.body;
    const phone = requirePhone(body.phone, config);
    await app.audit.checkPolicyAck(body.policyAcknowledged);
    let nickname: string | undefined;
    if (body.nickname !== undefined) {
      const v = normalizeText(body.nickname, 32);
      if (!v.ok) throw Errors.validation(`/body/nickname ${v.reason}`, { details: [{ path: '/body/nickname', message: v.reason }] });
      nickname = v.value;
    }
    if (body.password !== undefined) {
      const verdict = judgePassword(body.password, { minScore: config.PASSWORD_MIN_SCORE, minLength: config.PASSWORD_MIN_LENGTH, userInputs: [phone, phone.slice(-11), nickname ?? ''] });
      if (!verdict.ok) throw IdentityErrors.weakPassword(verdict.reason, { clause: '5.4.1', details: [{ path: '/body/password', message: [verdict.reason, ...verdict.suggestions].join(' ') }] });
    }
    if (nickname !== undefined || body.password !== undefined) {
      const shut = await app.models.shutdowns.findOne({ _id: 'profile', effectiveAt: { $lte: new Date() } }).lean();
      if (shut) throw IdentityErrors.functionShutDown(`Optional profile information is no longer collected (${shut.title}); register without a nickname or password`, { clause: '2.4.2(5)' });
    }
    if (!await app.security.verifyCode(phone, 'register', body.code)) throw IdentityErrors.invalidCode();

    const now = new Date();
    const subjectId = newId('sub');
    const profile = nickname ? { nickname } : {};
    const passwordHash = body.password !== undefined ? await app.passwords.hash(body.password) : undefined;
    const grantsProfile = Boolean(nickname || passwordHash);
    try {
      await app.outbox.insert(app.models.accounts, {
        _id: subjectId, phone, status: 'active', mustResetPassword: false, profile, leakReports: [],
        ...(passwordHash ? { passwordHash, passwordSetAt: now } : {}),
        ...(grantsProfile ? { profileGrantedAt: now } : {}),
        policyAck: { ...body.policyAcknowledged, at: now }, createdAt: now, updatedAt: now,
      }, [
        app.outbox.entry('privacy.subject.registered', {
          subject: subjectId,
          // Giving the optional information is the registrant's express grant of the `profile` purpose (2.4.1(1)ii).
          payload: { subjectId, registeredAt: now.toISOString(), policyAcknowledged: body.policyAcknowledged, ...(grantsProfile ? { grantedPurposes: ['profile'] } : {}) },
        }),
        app.outbox.entry('privacy.subject.contact-changed', {
          subject: subjectId,
          payload: { subjectId, channels: contactChannels(phone, profile), preferred: ['sms'] },
        }),
      ]);
    } catch (err) {
      if ((err as { code?: number }).code === 11000) throw IdentityErrors.alreadyRegistered();
      throw err;
    }
    await app.audit.record(request, subjectId, 'registered', ['phone', 'policyAck', ...(nickname ? ['nickname'] : []), ...(passwordHash ? ['password'] : [])], { role: 'subject', id: subjectId });
    const signals = app.devices.signals(request, body.deviceId);
    const assessed = await app.devices.assess(subjectId, signals);
    const tokens = await app.devices.complete({ subjectId, kind: 'subject', role: 'subject', method: 'registration', assessed });
    return reply.code(201).send(tokens);
  });
};
export default registrationRoutes;
