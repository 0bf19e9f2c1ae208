// Test support for the consent service: the real app on the shared Kafka broker and FerretDB, isolated
// by its own database and topic prefix, with tokens from a real loopback JWKS (TestAuthority).
import { createEvent, type EventPayload, type EventType } from '@pipp/contracts';
import { loadConfig } from '@pipp/service-kit';
import { TestAuthority, dropDatabase, dropTopics, isolatedEnv, produceRaw, uniqueId, waitFor } from '@pipp/testing';
import { buildApp } from '../src/app.js';
import { ConfigSchema, type Config } from '../src/config.js';

export type ConsentApp = Awaited<ReturnType<typeof buildApp>>;

export const CONSENT_PSEUDONYM_KEY = 'test-pseudonym-key-0123456789abcdef0123456789';

/** Tracks what a test file started so afterAll can stop and drop it. */
export class Harness {
  authority!: TestAuthority;
  readonly apps: ConsentApp[] = [];
  readonly databases = new Set<string>();
  /** Topic prefixes of the environments, whose topics are deleted at the end (the broker is shared). */
  readonly topicPrefixes = new Set<string>();

  static async start(): Promise<Harness> {
    const h = new Harness();
    h.authority = await TestAuthority.start();
    return h;
  }

  /** An isolated environment (own database and topic prefix) for one or more instances. */
  env(extra: Record<string, string> = {}): Record<string, string> {
    const env = isolatedEnv('consent', { AUTH_JWKS_URL: this.authority.jwksUrl, CONSENT_PSEUDONYM_KEY, PROJECTION_REFRESH_MS: '200', ...extra });
    this.databases.add(env.MONGO_DB!);
    this.topicPrefixes.add(env.KAFKA_TOPIC_PREFIX!);
    return env;
  }

  /** Builds and readies one consent instance on an environment. */
  async app(env: Record<string, string>): Promise<ConsentApp> {
    const app = await buildApp(loadConfig(ConfigSchema, env) as Config);
    this.apps.push(app);
    await app.ready();
    return app;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.apps.map((a) => a.close()));
    await this.authority.close();
    await Promise.allSettled([...this.databases].map(dropDatabase));
    for (const prefix of this.topicPrefixes) await dropTopics(prefix);
  }

  bearer(sub: string, role: 'subject' | 'operator' | 'dpo' | 'service'): { authorization: string } {
    return { authorization: `Bearer ${this.authority.token({ sub, role, ...(role === 'subject' || role === 'operator' || role === 'dpo' ? { sid: `s-${sub}` } : {}) })}` };
  }
}

/** Produces an event on the real broker, as its producing service would. */
export async function produce<T extends EventType>(env: Record<string, string>, type: T, source: Parameters<typeof createEvent>[1]['source'], payload: EventPayload<T>, subject?: string) {
  const event = createEvent(type, { source, payload, ...(subject ? { subject } : {}) });
  await produceRaw(`${env.KAFKA_TOPIC_PREFIX}${type}`, [{ key: subject ?? event.id, value: JSON.stringify(event) }]);
  return event;
}

/** Registers a subject through identity's event and waits until consent recorded it. */
export async function register(app: ConsentApp, env: Record<string, string>, subjectId = uniqueId('sub'), version = 1) {
  await produce(env, 'privacy.subject.registered', 'identity', {
    subjectId, registeredAt: new Date().toISOString(), policyAcknowledged: { documentId: 'general', version },
  }, subjectId);
  await waitFor(() => app.projection.subject(subjectId)?.consents.get('account')?.state === 'granted', { what: `registration of ${subjectId}`, timeoutMs: 45_000 });
  return subjectId;
}

/** Asks the decision API, as the given service. */
export async function ask(h: Harness, app: ConsentApp, body: Record<string, unknown>) {
  const service = (body.service as string) ?? 'identity';
  const res = await app.inject({ method: 'POST', url: '/v1/consent/decisions', headers: h.bearer(service, 'service'), payload: { service, ...body } });
  if (res.statusCode !== 200) throw new Error(`decision: HTTP ${res.statusCode} ${res.body}`);
  return res.json() as { allowed: boolean; clause: string; reason: string; basis: null | Record<string, string>; policyVersion?: number };
}

/** Grants or withdraws consents as the subject. */
export async function change(h: Harness, app: ConsentApp, subjectId: string, changes: Record<string, unknown>[], extra: Record<string, unknown> = {}) {
  return app.inject({
    method: 'POST', url: `/v1/consent/subjects/${subjectId}/consents`, headers: h.bearer(subjectId, 'subject'),
    payload: { channel: 'app', changes, ...extra },
  });
}

export { uniqueId, waitFor };
