import './types.js';
import { consentClientPlugin } from '@pipp/consent-client';
import { eventTypesOf } from '@pipp/contracts';
import { createFastify, infrastructurePlugin, legalHoldsPlugin } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from './config.js';
import { identityEvents, purgeReleased } from './events/index.js';
import { auditPlugin } from './plugins/audit.js';
import { devicesPlugin } from './plugins/devices.js';
import { KeyRing } from './plugins/keys.js';
import { modelsPlugin } from './plugins/models.js';
import { passwordsPlugin } from './plugins/passwords.js';
import { securityPlugin } from './plugins/security.js';
import { sessionsPlugin } from './plugins/sessions.js';
import { smsPlugin } from './plugins/sms.js';
import { staffBootstrapPlugin } from './plugins/staff.js';
import { accountNamesPlugin } from './plugins/account-names.js';
import { housekeepingPlugin } from './plugins/housekeeping.js';
import { retentionPeriodsPlugin } from './plugins/retention-periods.js';
import routes from './routes/index.js';

export const SERVICE = 'identity';
export const PREFIX = '/v1/identity';

/**
 * The identity service as a Fastify plugin: phone-first accounts, verified sign-in, sessions and
 * tokens (it signs every access token and publishes the JWKS), profile and account settings, device
 * risk, activity logs and leak reports (policy 2.1.1, 2.4.1, 4.1, 4.1.2, 5.4.1; PIPL art. 44–47, 51).
 * identity verifies its own tokens in-process with its key ring (no JWKS round trip).
 */
export async function identityApp(app: FastifyInstance, opts: { config: Config }) {
  const { config } = opts;
  const keys = new KeyRing(config.IDENTITY_SIGNING_KEY, config.IDENTITY_PREVIOUS_KEYS);
  await app.register(infrastructurePlugin, {
    service: SERVICE,
    config,
    topics: eventTypesOf(SERVICE),
    auth: { publicKey: async (kid) => keys.publicPem(kid), maxTokenLifetimeMs: Math.max(config.ACCESS_TOKEN_TTL_S, config.SERVICE_TOKEN_TTL_S) * 1000 },
    openapi: { prefix: PREFIX, title: 'PIPP identity service', description: 'Phone-first accounts, verified sign-in, sessions and tokens, profile and account settings, device risk, activity logs and leak reports (policy 2.4.1, 4.1.2, 5.4.1).' },
  });
  await app.register(modelsPlugin);
  await app.register(smsPlugin, { config });
  await app.register(passwordsPlugin);
  await app.register(securityPlugin, { config, keys });
  await app.register(sessionsPlugin, { config, keys });
  await app.register(retentionPeriodsPlugin, { config });
  await app.register(devicesPlugin);
  await app.register(auditPlugin, { config });
  await app.register(staffBootstrapPlugin, { config });
  // The decision API of the consent service, called with a service token identity mints for itself.
  await app.register(consentClientPlugin, { baseUrl: config.CONSENT_URL, token: async () => app.sessions.serviceToken(SERVICE).accessToken });
  // Holds the retention service announces (policy 4.1): withdrawals keep what they cover isolated,
  // sweeps and housekeeping leave it; a release purges what was kept under it.
  await app.register(legalHoldsPlugin, { onReleased: (hold) => purgeReleased(app, hold) });
  await app.register(identityEvents, { config, keys });
  await app.register(housekeepingPlugin, { config });
  await app.register(accountNamesPlugin);
  await app.register(routes, { prefix: PREFIX, config, keys });
}

/** Builds the service (tests call this and `inject()`; server.ts calls it and listens). */
export async function buildApp(config: Config) {
  const trustProxy = config.TRUST_PROXY ? config.TRUST_PROXY.split(',').map((s) => s.trim()) : false;
  const app = createFastify({ service: SERVICE, config, trustProxy });
  await app.register(fp(identityApp, { name: 'pipp-identity' }), { config });
  return app;
}
