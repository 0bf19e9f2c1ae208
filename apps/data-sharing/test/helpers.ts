// Building the data-sharing service on the real broker and database for integration tests: isolated
// database and topic prefix, tokens from a loopback JWKS authority, loopback webhooks allowed.
import { loadConfig } from '@pipp/service-kit';
import { TestAuthority, dropDatabase, isolatedEnv } from '@pipp/testing';
import { randomBytes } from 'node:crypto';
import { buildApp } from '../src/app.js';
import { Receiver } from './receiver.js';
import { ConfigSchema, type Config } from '../src/config.js';

export type DsApp = Awaited<ReturnType<typeof buildApp>>;

/** An environment for one data-sharing instance (own database and topic prefix unless given). */
export function dsEnv(authority: TestAuthority, extra: Record<string, string> = {}): Record<string, string> {
  return isolatedEnv('data-sharing', {
    AUTH_JWKS_URL: authority.jwksUrl,
    SERVICE_CLIENT_SECRETS: JSON.stringify({ 'data-sharing': 'test-secret' }),
    DATA_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    WEBHOOK_ALLOWED_HOSTS: '127.0.0.1,localhost',
    WEBHOOK_ALLOW_LOOPBACK: 'true',
    WEBHOOK_BACKOFF_MS: '200',
    WEBHOOK_POLL_MS: '100',
    WEBHOOK_TIMEOUT_MS: '3000',
    CONSENT_URL: 'http://127.0.0.1:9',
    ...extra,
  });
}

/** Builds and readies the service with a service token from the test authority. */
export async function startDs(authority: TestAuthority, env: Record<string, string>): Promise<DsApp> {
  const config: Config = loadConfig(ConfigSchema, env);
  const app = await buildApp(config, { serviceToken: async () => authority.token({ sub: 'data-sharing', role: 'service' }) });
  await app.ready();
  return app;
}

/** Tracks test databases and drops them at the end. */
export class Databases {
  private readonly names = new Set<string>();
  add(env: Record<string, string>) { this.names.add(env.MONGO_DB!); return env; }
  async dropAll() { await Promise.all([...this.names].map((n) => dropDatabase(n).catch(() => undefined))); }
}

/** Bearer header for a token of the authority. */
export function bearer(authority: TestAuthority, sub: string, role: 'subject' | 'operator' | 'dpo' | 'service') {
  return { authorization: `Bearer ${authority.token({ sub, role, ...(role === 'subject' || role === 'operator' || role === 'dpo' ? { sid: `s-${sub}` } : {}) })}` };
}

/**
 * The real consent service in-process, listening on loopback (the data-sharing service reaches it over
 * HTTP with its real ConsentClient), with its own database and the same topic prefix as the
 * data-sharing instance, so its consent events reach data-sharing's decision cache.
 */
export async function startConsent(authority: TestAuthority, topicPrefix: string, dbs: Databases) {
  const { buildApp: buildConsent } = await import('@pipp/consent/app');
  const { ConfigSchema: ConsentConfig } = await import('@pipp/consent/config');
  const env = dbs.add(isolatedEnv('consent', {
    AUTH_JWKS_URL: authority.jwksUrl, KAFKA_TOPIC_PREFIX: topicPrefix, PROJECTION_REFRESH_MS: '200',
    CONSENT_PSEUDONYM_KEY: 'test-pseudonym-key-0123456789abcdef0123456789',
  }));
  const app = await buildConsent(loadConfig(ConsentConfig, env) as never);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address() as { port: number };
  return { app, url: `http://127.0.0.1:${address.port}`, env };
}

export type ConsentHandle = Awaited<ReturnType<typeof startConsent>>;

/** Grants or withdraws consents as the subject, through the consent service's API. */
export async function consentChange(authority: TestAuthority, consent: ConsentHandle, subjectId: string, changes: { purpose: string; state: 'granted' | 'withdrawn'; scope?: Record<string, unknown> }[]) {
  const res = await consent.app.inject({
    method: 'POST', url: `/v1/consent/subjects/${subjectId}/consents`, headers: bearer(authority, subjectId, 'subject'),
    payload: { channel: 'app', changes },
  });
  if (res.statusCode !== 201) throw new Error(`consent change: HTTP ${res.statusCode} ${res.body}`);
  return res.json() as { records: { recordId: string }[] };
}

/**
 * A data-sharing instance with the real consent service on the same topic prefix, and a recipient
 * endpoint, for a test file's beforeAll; `close` ends them all (afterAll).
 */
export async function startWithConsent() {
  const authority = await TestAuthority.start();
  const receiver = await Receiver.start();
  const dbs = new Databases();
  const env = dbs.add(dsEnv(authority));
  const consent = await startConsent(authority, env.KAFKA_TOPIC_PREFIX!, dbs);
  const app = await startDs(authority, { ...env, CONSENT_URL: consent.url });
  const close = async () => {
    await app.close();
    await consent.app.close();
    await receiver.close();
    await authority.close();
    await dbs.dropAll();
  };
  return { authority, receiver, consent, app, env, dbs, close };
}
