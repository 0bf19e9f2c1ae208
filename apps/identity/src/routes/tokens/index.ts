import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { SERVICES } from '@pipp/contracts';
import { Type } from '@sinclair/typebox';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config } from '../../config.js';
import { IdentityErrors } from '../../errors.js';
import { errors, TokenPairSchema } from '../../schemas.js';

/**
 * Parses config `SERVICE_CLIENT_SECRETS` (JSON map of service name → client secret).
 * @throws Error naming the variable when it is not such a map or a secret is shorter than 16 characters.
 */
export function parseClientSecrets(json: string): Map<string, Buffer> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new Error('SERVICE_CLIENT_SECRETS is not valid JSON');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('SERVICE_CLIENT_SECRETS must be a JSON object of service name to secret');
  const out = new Map<string, Buffer>();
  for (const [name, secret] of Object.entries(parsed)) {
    if (!(SERVICES as readonly string[]).includes(name)) throw new Error(`SERVICE_CLIENT_SECRETS names an unknown service: ${name}`);
    if (typeof secret !== 'string' || secret.length < 16) throw new Error(`SERVICE_CLIENT_SECRETS: the secret of ${name} must be a string of at least 16 characters`);
    out.set(name, createHash('sha256').update(secret).digest());
  }
  return out;
}

/**
 * Tokens:
 * - `POST /v1/identity/public/tokens/refresh` (anonymous, the refresh token is the credential): rotates
 *   the refresh token; a reused one ends its session family (401), except the one a refresh spent less
 *   than REFRESH_REUSE_GRACE_S (s) ago, which gets that refresh's successor again (parallel refreshes).
 * - `POST /v1/identity/public/service-tokens` (anonymous, client credentials): `{clientId, clientSecret}`
 *   → `{accessToken, tokenType: 'Bearer', expiresIn}` (s), role `service`, `sub` = the service name.
 *   401 PIPP_INVALID_CLIENT for an unknown client or a wrong secret (compared in constant time).
 * - `POST /v1/identity/sign-out` (any signed-in subject or staff token): ends the token's session;
 *   its tokens stop working everywhere (`privacy.session.revoked`, reason sign-out). 204.
 */
const tokenRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, opts) => {
  const secrets = parseClientSecrets(opts.config.SERVICE_CLIENT_SECRETS);

  app.post('/public/tokens/refresh', {
    schema: {
      tags: ['tokens'], summary: 'Rotate a refresh token for a new token pair',
      body: Type.Object({ refreshToken: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }),
      response: { 200: TokenPairSchema, ...errors(400, 401, 415, 503) },
    },
  }, async (request) => app.sessions.refresh(request.body.refreshToken));

  app.post('/public/service-tokens', {
    schema: {
      tags: ['tokens'], summary: 'Service token by client credentials',
      body: Type.Object({
        clientId: Type.String({ minLength: 1, maxLength: 64 }),
        clientSecret: Type.String({ minLength: 1, maxLength: 512 }),
      }, { additionalProperties: false }),
      response: {
        200: Type.Object({ accessToken: Type.String(), tokenType: Type.Literal('Bearer'), expiresIn: Type.Integer() }, { additionalProperties: false }),
        ...errors(400, 401, 415, 429),
      },
    },
  }, async (request) => {
    await app.security.checkIp(request.ip);
    const expected = secrets.get(request.body.clientId);
    const given = createHash('sha256').update(request.body.clientSecret).digest();
    const ok = timingSafeEqual(expected ?? Buffer.alloc(32), given) && expected !== undefined;
    if (!ok) {
      await app.security.hit(`signin-ip-fail:${app.security.ipKey(request.ip)}`, 3_600_000);
      throw IdentityErrors.invalidClient();
    }
    const token = app.sessions.serviceToken(request.body.clientId);
    return { accessToken: token.accessToken, tokenType: 'Bearer' as const, expiresIn: token.expiresIn };
  });

  app.post('/sign-out', {
    preHandler: app.requireRole('subject', 'operator', 'dpo'),
    schema: { tags: ['tokens'], summary: 'End the current session', security: [{ bearer: [] }], response: { 204: Type.Null(), ...errors(401, 403) } },
  }, async (request, reply) => {
    const { sub, sid } = request.user;
    if (sid) await app.sessions.revoke(sub, sid, 'sign-out');
    return reply.code(204).send(null);
  });
};
export default tokenRoutes;
