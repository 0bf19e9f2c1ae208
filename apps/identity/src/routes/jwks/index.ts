import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { KeyRing } from '../../plugins/keys.js';

const Jwk = Type.Object({
  kty: Type.Literal('EC'), crv: Type.Literal('P-256'), x: Type.String(), y: Type.String(),
  kid: Type.String(), alg: Type.Literal('ES256'), use: Type.Literal('sig'),
}, { additionalProperties: false });

/**
 * `GET /v1/identity/.well-known/jwks.json` (anonymous): the public keys every service verifies access
 * tokens with (RFC 7517): the current key and earlier ones still valid during a rotation. Cacheable
 * for 5 minutes; verifiers refetch on an unknown `kid`.
 */
const jwksRoutes: FastifyPluginAsyncTypebox<{ keys: KeyRing }> = async (app, opts) => {
  app.get('/.well-known/jwks.json', {
    schema: { tags: ['tokens'], summary: "identity's token verification keys (JWKS)", response: { 200: Type.Object({ keys: Type.Array(Jwk) }) } },
    logLevel: 'warn',
  }, async (_request, reply) => {
    void reply.header('cache-control', 'public, max-age=300');
    return opts.keys.jwks() as never;
  });
};
export default jwksRoutes;
