import { loadConfig } from '@pipp/service-kit';
import { dropDatabase, freePort, isolatedEnv } from '@pipp/testing';
import { buildApp, type GatewayOptions } from '../src/app.js';
import { ConfigSchema } from '../src/config.js';

export type Gateway = Awaited<ReturnType<typeof buildApp>>;

/** A loopback port that nothing listens on (an upstream that is down). */
export const closedPort = freePort;

/**
 * Builds the real gateway on the shared broker and database (its own test database and topic prefix),
 * waits until it is ready and has fetched its upstreams' documents.
 */
export async function startGateway(env: Record<string, string>, options: GatewayOptions = {}) {
  const fullEnv = isolatedEnv('gateway', env);
  const app = await buildApp(loadConfig(ConfigSchema, fullEnv), options);
  await app.ready();
  await app.apiDocs.refresh();
  return {
    app,
    env: fullEnv,
    async close() {
      await app.close();
      await dropDatabase(fullEnv.MONGO_DB!);
    },
  };
}

/** Bearer authorization header. */
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
