import { eventTypesOf } from '@pipp/contracts';
import { consentClientPlugin } from '@pipp/consent-client';
import { ConfigError, ServiceTokens, createFastify, infrastructurePlugin, legalHoldsPlugin } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from './config.js';
import { eventsPlugin } from './events/index.js';
import { auditPlugin } from './plugins/audit.js';
import { cryptoPlugin } from './plugins/crypto.js';
import { erasedSubjectsPlugin } from './plugins/erased-subjects.js';
import { modelsPlugin } from './plugins/models.js';
import { noticesPlugin } from './plugins/notices.js';
import routes from './routes/index.js';

export const SERVICE = 'data-sharing';
export const PREFIX = '/v1/data-sharing';

export interface AppOptions {
  config: Config;
  /**
   * Source of the service token sent to the consent service (role `service`). Default: client
   * credentials at identity (`ServiceTokens` with this service's entry of `SERVICE_CLIENT_SECRETS`).
   * Tests that do not run identity pass tokens from their own authority.
   */
  serviceToken?: () => Promise<string>;
}

/** This service's client secret from `SERVICE_CLIENT_SECRETS`. @throws ConfigError when absent. */
export function ownClientSecret(config: Pick<Config, 'SERVICE_CLIENT_SECRETS'>): string {
  let map: unknown;
  try {
    map = JSON.parse(config.SERVICE_CLIENT_SECRETS);
  } catch {
    throw new ConfigError([{ variable: 'SERVICE_CLIENT_SECRETS', message: 'is not JSON' }]);
  }
  const secret = (map as Record<string, unknown> | null)?.[SERVICE];
  if (typeof secret !== 'string' || !secret) throw new ConfigError([{ variable: 'SERVICE_CLIENT_SECRETS', message: `has no entry for "${SERVICE}"` }]);
  return secret;
}

/**
 * The data-sharing service as a Fastify plugin: recipients, sharing only with consent or a legal
 * basis, public disclosure, indirect collection, cross-border rules, anonymized releases and deletion
 * notices to recipients (policy 1.2, 2.4.2(1)(3), 3.1, 3.3, 3.4, 4.2, 5.3).
 */
export async function dataSharingApp(app: FastifyInstance, opts: AppOptions) {
  const { config } = opts;
  const token = opts.serviceToken ?? (() => {
    const tokens = new ServiceTokens({ identityUrl: config.IDENTITY_URL, clientId: SERVICE, clientSecret: ownClientSecret(config) });
    return () => tokens.token();
  })();
  await app.register(infrastructurePlugin, {
    service: SERVICE,
    config,
    topics: eventTypesOf(SERVICE),
    openapi: { prefix: PREFIX, title: 'PIPP data-sharing service', description: 'Recipients, sharing and cross-border transfers only with consent or a legal basis, public disclosure, indirect collection, anonymized releases and deletion notices to recipients (policy 1.2, 2.4.2(1)(3), 3.1, 3.3, 3.4, 4.2, 5.3).' },
  });
  await app.register(cryptoPlugin, { key: config.DATA_ENCRYPTION_KEY });
  await app.register(modelsPlugin);
  await app.register(erasedSubjectsPlugin);
  await app.register(auditPlugin);
  await app.register(noticesPlugin, { config });
  await app.register(consentClientPlugin, { baseUrl: config.CONSENT_URL, token });
  await app.register(legalHoldsPlugin, {}); // sweeps leave what legal holds cover (policy 4.1)
  await app.register(eventsPlugin);
  await app.register(routes, { prefix: PREFIX, config });
}

/** Builds the service (tests call this and `inject()`; server.ts calls it and listens). */
export async function buildApp(config: Config, opts: Omit<AppOptions, 'config'> = {}) {
  const app = createFastify({ service: SERVICE, config });
  await app.register(fp(dataSharingApp, { name: 'pipp-data-sharing' }), { config, ...opts });
  return app;
}
