import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import type { KeyRing } from '../plugins/keys.js';
// WIP import activity
// WIP import account
import codes from './codes/index.js';
// WIP import devices
import jwks from './jwks/index.js';
// WIP import leakReports
// WIP import passwords
// WIP import phone
// WIP import profile
import registrations from './registrations/index.js';
// WIP import sessions
import signIn from './sign-in/index.js';
// WIP import staff
import tokens from './tokens/index.js';

/** Registers one route plugin per resource of the identity service, under /v1/identity. */
export default async function routes(app: FastifyInstance, opts: { config: Config; keys: KeyRing }) {
  const { config } = opts;
  await app.register(jwks, { keys: opts.keys });
  await app.register(codes, { config });
  await app.register(registrations, { config });
  await app.register(signIn, { config });
  await app.register(tokens, { config });
  // WIP passwords
  // WIP sessions
  // WIP profile
  // WIP account
  // WIP phone
  // WIP devices
  // WIP activity
  // WIP leakReports
  // WIP staff
}
