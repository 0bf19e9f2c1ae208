// Brings @fastify/jwt's augmentation of FastifyRequest (`request.user`, typed by the kit as
// AccessTokenClaims) into this package's type program. Types only; nothing is imported at run time.
import type {} from '@fastify/jwt';
