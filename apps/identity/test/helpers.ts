// Test support for the identity service: a real instance on the shared broker and database, with
// its own signing key, database and topic prefix; the one-time codes are read from the SMS sink
// collection the service writes (its provider's "sent" record), never from inside the code.
import { loadConfig } from '@pipp/service-kit';
import { dropDatabase, freePort, isolatedEnv, waitFor, withMongo } from '@pipp/testing';
import type { FastifyInstance } from 'fastify';
import { generateKeyPairSync } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { buildApp } from '../src/app.js';
import { ConfigSchema } from '../src/config.js';
import { parseMobileNumber } from '../src/domain/phone.js';

export type IdentityApp = Awaited<ReturnType<typeof buildApp>>;

export const SERVICE_SECRETS = { retention: 'retention-secret-0123456789', consent: 'consent-secret-0123456789' };

export function newSigningKey(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

export function identityEnv(extra: Record<string, string> = {}): Record<string, string> {
  return isolatedEnv('identity', {
    IDENTITY_SIGNING_KEY: newSigningKey(),
    SERVICE_CLIENT_SECRETS: JSON.stringify(SERVICE_SECRETS),
    OTP_RESEND_INTERVAL_S: '0',
    // Every test of a file asks for codes from one address (inject's 127.0.0.1): the per-address hourly
    // limit is tested where it is set low (registration.integration.test.ts).
    OTP_MAX_PER_IP_PER_HOUR: '1000',
    SIGNIN_DELAY_BASE_MS: '20',
    ...extra,
  });
}

export async function startIdentity(env: Record<string, string>): Promise<IdentityApp> {
  const app = await buildApp(loadConfig(ConfigSchema, env));
  await app.ready();
  return app;
}

export async function stopIdentity(app: IdentityApp | undefined, env: Record<string, string>) {
  await app?.close();
  if (env.MONGO_DB) await dropDatabase(env.MONGO_DB);
}

/** The real consent service beside a test's identity instance; see `startWithConsent`. */
export interface ConsentBeside {
  app: FastifyInstance & { projection: { subject(id: string): { consents: Map<string, { state: string }> } | undefined } };
  env: Record<string, string>;
  /** Waits until consent has recorded `purpose` for the subject in `state` (its events are asynchronous). */
  until(subjectId: string, purpose: string, state?: 'granted' | 'withdrawn'): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Identity with the real consent service beside it, as deployed: one set of topics (consent records
 * identity's registrations; identity hears consent's changes), each its own database. Identity
 * listens on loopback so that consent verifies identity's tokens against identity's JWKS; identity
 * asks consent for its decisions. Consent is imported by package name (a devDependency; built by
 * `npx turbo run build`).
 */
export async function startWithConsent(extra: Record<string, string> = {}): Promise<{ env: Record<string, string>; app: IdentityApp; consent: ConsentBeside }> {
  const consentPort = await freePort();
  const env = identityEnv({ CONSENT_URL: `http://127.0.0.1:${consentPort}`, ...extra });
  const app = await startIdentity(env);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const appModule = '@pipp/consent/app';
  const configModule = '@pipp/consent/config';
  const { buildApp: buildConsent } = await import(appModule) as { buildApp: (c: unknown) => Promise<ConsentBeside['app']> };
  const { ConfigSchema: ConsentConfig } = await import(configModule) as { ConfigSchema: Parameters<typeof loadConfig>[0] };
  const consentEnv = isolatedEnv('consent', {
    AUTH_JWKS_URL: `http://127.0.0.1:${port}/v1/identity/.well-known/jwks.json`, KAFKA_TOPIC_PREFIX: env.KAFKA_TOPIC_PREFIX!,
    CONSENT_PSEUDONYM_KEY: 'identity-test-pseudonym-key-0123456789abcdef', PROJECTION_REFRESH_MS: '200',
  });
  const consentApp = await buildConsent(loadConfig(ConsentConfig, consentEnv));
  await consentApp.listen({ host: '127.0.0.1', port: consentPort });
  return {
    env, app,
    consent: {
      app: consentApp, env: consentEnv,
      until: async (subjectId, purpose, state = 'granted') => { await waitFor(() => consentApp.projection.subject(subjectId)?.consents.get(purpose)?.state === state, { what: `consent to ${purpose} ${state} for ${subjectId}`, timeoutMs: 45_000 }); },
      stop: async () => { await consentApp.close(); await dropDatabase(consentEnv.MONGO_DB!); },
    },
  };
}


/** A random valid mainland mobile number in E.164 (+86 13x…). */
export function randomPhone(): string {
  return `+86139${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
}

/** Spaced national form of a +86 number: `139 1234 5678`. */
export function nationalSpaced(e164: string): string {
  const n = e164.slice(3);
  return `${n.slice(0, 3)} ${n.slice(3, 7)} ${n.slice(7)}`;
}

/** Full-width form: `＋８６ １３９…`. */
export function fullWidth(e164: string): string {
  return e164.replace(/[0-9+]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0));
}

/** The latest code the SMS sink recorded for a number, read from the database directly. */
export async function latestCode(env: Record<string, string>, e164: string, after = new Date(0)): Promise<string> {
  return waitFor(async () => withMongo(async (c) => {
    const msg = await c.db(env.MONGO_DB).collection('sms_sink').find({ to: e164, at: { $gt: after } }).sort({ at: -1 }).limit(1).next();
    const m = msg ? /\b(\d{6})\b/.exec(String(msg.text)) : null;
    return m?.[1];
  }), { what: `an SMS code for ${e164.slice(0, 4)}…` });
}

export const json = (payload: unknown) => ({ payload: payload as Record<string, unknown>, headers: { 'content-type': 'application/json' } });

/** Requests a code and returns it (from the sink). */
export async function requestCode(app: IdentityApp, env: Record<string, string>, phone: string, purpose: string, headers: Record<string, string> = {}) {
  const before = new Date(Date.now() - 1);
  const res = await app.inject({ method: 'POST', url: '/v1/identity/public/codes', payload: { phone, purpose }, headers });
  if (res.statusCode !== 202) throw new Error(`code request failed: ${res.statusCode} ${res.body}`);
  const parsed = parseMobileNumber(phone, ['CN']);
  if (!parsed.ok) throw new Error('test phone does not parse');
  return latestCode(env, parsed.e164, before);
}

export const STRONG_PASSWORD = 'violet-harbour-quietly-73-lanterns';

/** Registers a subject (code from the sink) and returns its tokens. */
export async function register(app: IdentityApp, env: Record<string, string>, opts: { phone?: string; password?: string; deviceId?: string; nickname?: string; ua?: string; ip?: string } = {}) {
  const phone = opts.phone ?? randomPhone();
  const code = await requestCode(app, env, phone, 'register');
  const res = await app.inject({
    method: 'POST', url: '/v1/identity/public/registrations',
    headers: { 'user-agent': opts.ua ?? 'Mozilla/5.0 (Linux; Android 14) Chrome/120.0 Mobile' },
    ...(opts.ip ? { remoteAddress: opts.ip } : {}),
    payload: {
      phone, code, policyAcknowledged: { documentId: 'general', version: 1 },
      ...(opts.password === undefined ? { password: STRONG_PASSWORD } : opts.password ? { password: opts.password } : {}),
      deviceId: opts.deviceId ?? 'device-test-0001',
      ...(opts.nickname ? { nickname: opts.nickname } : {}),
    },
  });
  if (res.statusCode !== 201) throw new Error(`registration failed: ${res.statusCode} ${res.body}`);
  const e164 = parseMobileNumber(phone, ['CN']);
  return { phone: e164.ok ? e164.e164 : phone, ...(res.json() as { accessToken: string; refreshToken: string; subjectId: string; sessionId: string }) };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
