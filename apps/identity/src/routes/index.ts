import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import type { KeyRing } from '../plugins/keys.js';
import account from './account/index.js';
import activity from './activity/index.js';
import codes from './codes/index.js';
import devices from './devices/index.js';
import jwks from './jwks/index.js';
import leakReports from './leak-reports/index.js';
import passwords from './passwords/index.js';
import phone from './phone/index.js';
import profile from './profile/index.js';
import registrations from './registrations/index.js';
import sessions from './sessions/index.js';
import signIn from './sign-in/index.js';
import staff from './staff/index.js';
import tokens from './tokens/index.js';

/** Registers one route plugin per resource of the identity service, under /v1/identity. */
export default async function routes(app: FastifyInstance, opts: { config: Config; keys: KeyRing }) {
  const { config } = opts;
  await app.register(jwks, { keys: opts.keys });
  for (const plugin of [codes, registrations, signIn, tokens, passwords, sessions, profile, account, phone, devices, activity, leakReports, staff]) {
    await app.register(plugin, { config });
  }
}
