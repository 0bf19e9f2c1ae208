import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Config } from '../../config.js';
import { errors, PhoneInput } from '../../schemas.js';
import { requirePhone } from '../helpers.js';

/**
 * `POST /v1/identity/public/codes` (anonymous): sends a one-time code to a mobile number for
 * registration, sign-in or a password reset (policy 2.4.1(1)i identity verification). Always 202 with
 * the same body, whether or not the number has an account (no enumeration); the code goes out either
 * way. 400 PIPP_INVALID_PHONE; 429 PIPP_TOO_MANY_REQUESTS (Retry-After) per number and per IP.
 */
const codeRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, opts) => {
  app.post('/public/codes', {
    schema: {
      tags: ['registration'],
      summary: 'Send a one-time code to a mobile number',
      body: Type.Object({
        phone: PhoneInput,
        purpose: Type.Union([Type.Literal('register'), Type.Literal('sign-in'), Type.Literal('password-reset')]),
      }, { additionalProperties: false }),
      response: {
        202: Type.Object({
          status: Type.Literal('sent'),
          expiresIn: Type.Integer({ description: 'Code validity (s)' }),
          resendAfter: Type.Integer({ description: 'Seconds before another code may be requested' }),
        }, { additionalProperties: false }),
        ...errors(400, 415, 429, 503),
      },
    },
  }, async (request, reply) => {
    const phone = requirePhone(request.body.phone, opts.config);
    const sent = await app.security.issueCode(phone, request.body.purpose, request.ip);
    return reply.code(202).send({ status: 'sent' as const, ...sent });
  });
};
export default codeRoutes;
