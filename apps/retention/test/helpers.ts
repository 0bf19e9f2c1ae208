// Shared set-up of the retention integration tests: the real service on the real broker and
// database, isolated per test (own database, own topic prefix), tokens from a loopback JWKS.
import { parseEvent, type EventEnvelope, type EventType } from '@pipp/contracts';
import { loadConfig } from '@pipp/service-kit';
import { collectMessages, dropDatabase, dropTopics, isolatedEnv, TestAuthority } from '@pipp/testing';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { buildApp } from '../src/app.js';
import { ConfigSchema } from '../src/config.js';

export type RetentionApp = Awaited<ReturnType<typeof buildApp>>;

/** Defaults that make the saga's clocks fast enough to watch in a test. */
export const FAST = {
  SAGA_TICK_MS: '100',
  ERASURE_RETRY_BASE_MS: '400',
  ERASURE_RETRY_MAX_MS: '2000',
  SWEEP_INTERVAL_MS: '0',
  DPO_ACCOUNT_IDS: 'dpo-1',
};

export class Harness {
  readonly databases: string[] = [];
  readonly prefixes: string[] = [];
  private readonly apps: { close(): Promise<unknown> }[] = [];
  private constructor(readonly authority: TestAuthority) {}

  static async start(): Promise<Harness> {
    return new Harness(await TestAuthority.start());
  }

  /** An isolated environment for retention (or a fixture sharing its topic prefix). */
  env(extra: Record<string, string> = {}, label = 'retention'): Record<string, string> {
    const env = isolatedEnv(label, { AUTH_JWKS_URL: this.authority.jwksUrl, ...FAST, ...extra });
    this.databases.push(env.MONGO_DB!);
    this.prefixes.push(env.KAFKA_TOPIC_PREFIX!);
    return env;
  }

  /** A second database on the same topic prefix (another service of the same deployment). */
  sibling(env: Record<string, string>, label: string, extra: Record<string, string> = {}): Record<string, string> {
    const db = `${env.MONGO_DB!}_${label.replace(/[^A-Za-z0-9]/g, '')}`.slice(0, 63);
    this.databases.push(db);
    return { ...env, MONGO_DB: db, ...extra };
  }

  async retention(env: Record<string, string>): Promise<RetentionApp> {
    const app = await buildApp(loadConfig(ConfigSchema, env));
    await app.ready();
    this.apps.push(app);
    return app;
  }

  /**
   * The real consent service on the deployment's topics (its own database), listening on loopback:
   * retention reads its catalogue (shutdowns). Imported by package name (a devDependency, built by
   * `npx turbo run build`). Pass the returned `url` as retention's CONSENT_URL.
   */
  async consent(env: Record<string, string>): Promise<{ url: string; app: FastifyInstance }> {
    const appModule = '@pipp/consent/app';
    const configModule = '@pipp/consent/config';
    const { buildApp: buildConsent } = await import(appModule) as { buildApp: (c: unknown) => Promise<FastifyInstance> };
    const { ConfigSchema: ConsentConfig } = await import(configModule) as { ConfigSchema: Parameters<typeof loadConfig>[0] };
    const consentEnv = this.sibling(env, 'consent', { CONSENT_PSEUDONYM_KEY: 'retention-test-pseudonym-key-0123456789abcdef' });
    const app = this.track(await buildConsent(loadConfig(ConsentConfig, consentEnv)));
    await app.listen({ host: '127.0.0.1', port: 0 });
    return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, app };
  }

  track<A extends { close(): Promise<unknown> }>(app: A): A {
    this.apps.push(app);
    return app;
  }

  token(sub: string, role: 'subject' | 'operator' | 'dpo' | 'service' = 'subject'): string {
    return this.authority.token({ sub, role, ...(role === 'subject' || role === 'operator' || role === 'dpo' ? { sid: `sid-${sub}` } : {}) });
  }

  auth(sub: string, role: 'subject' | 'operator' | 'dpo' | 'service' = 'subject') {
    return { authorization: `Bearer ${this.token(sub, role)}` };
  }

  async close() {
    for (const app of this.apps.reverse()) await app.close().catch(() => {});
    await this.authority.close();
    await Promise.all(this.databases.map((d) => dropDatabase(d).catch(() => {})));
    for (const prefix of this.prefixes) await dropTopics(prefix);
  }
}

/** Reads an event topic of the deployment until `until` holds; returns the parsed events. */
export async function events<T extends EventType>(env: Record<string, string>, type: T, until: (events: EventEnvelope<T>[]) => boolean, timeoutMs = 30_000): Promise<EventEnvelope<T>[]> {
  const parse = (values: (string | null)[]): EventEnvelope<T>[] => values.map((v) => parseEvent(v)).flatMap((r) => (r.ok ? [r.event as unknown as EventEnvelope<T>] : []));
  const msgs = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}${type}`, (m) => until(parse(m.map((x) => x.value))), timeoutMs);
  return parse(msgs.map((m) => m.value));
}

export { scanForPi, type PiHit } from '@pipp/testing';
