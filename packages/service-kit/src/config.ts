import { Type, type Static, type TObject, type TProperties } from '@sinclair/typebox';
import { envSchema } from 'env-schema';
import { ResidencyConfigProperties } from './residency.js';

/**
 * Settings every service reads from its environment. Services extend this schema with their own
 * (see `defineConfig`). Secrets never get defaults: a missing one stops the process at boot.
 */
export const BaseConfigProperties = {
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('test'), Type.Literal('production')], { default: 'development' }),
  HOST: Type.String({ default: '127.0.0.1', description: 'Interface to listen on' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, description: 'TCP port (0 picks a free one)' }),
  LOG_FORMAT: Type.Union([Type.Literal('json'), Type.Literal('pretty')], { default: 'json', description: 'pretty: human-readable lines (make dev); json: one JSON object per line' }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  MONGO_URL: Type.String({ pattern: '^mongodb(\\+srv)?://', description: 'MongoDB server URL (no database name)' }),
  MONGO_DB: Type.String({ pattern: '^[A-Za-z0-9_-]{1,63}$', description: "This service's own database" }),
  KAFKA_BROKERS: Type.String({ pattern: '^[^,\\s]+(,[^,\\s]+)*$', description: 'Comma-separated host:port list' }),
  KAFKA_TOPIC_PREFIX: Type.String({ default: '', pattern: '^[A-Za-z0-9._-]*$', description: 'Prefix of every topic and consumer group (isolates deployments and tests)' }),
  KAFKA_PARTITIONS: Type.Integer({ minimum: 1, maximum: 64, default: 3, description: 'Partitions of the topics this service creates' }),
  KAFKA_REPLICATION_FACTOR: Type.Integer({ minimum: 1, maximum: 5, default: 1 }),
  AUTH_ISSUER: Type.String({ default: 'pipp-identity', description: 'Expected `iss` of access tokens' }),
  AUTH_AUDIENCE: Type.String({ default: 'pipp', description: 'Expected `aud` of access tokens' }),
  SHUTDOWN_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 120_000, default: 10_000, description: 'Graceful shutdown bound (ms)' }),
  REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 600_000, default: 30_000, description: 'A client that has not sent its whole request within this is answered 408 and cut off (ms)' }),
  OUTBOX_POLL_MS: Type.Integer({ minimum: 10, maximum: 60_000, default: 500, description: 'Outbox relay polling interval when idle (ms)' }),
  OUTBOX_SWEEP_MS: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 30_000, description: 'Full outbox sweep interval (ms): publishes events a crashed process wrote but could not publish' }),
  CONSUMER_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 100, default: 5, description: 'Handler attempts before a message is dead-lettered' }),
  CONSUMER_BACKOFF_MS: Type.Integer({ minimum: 1, maximum: 60_000, default: 200, description: 'First retry delay (ms); doubles per attempt' }),
  // Where this service's stores are (policy 5.3), announced at start-up: see residency.ts.
  ...ResidencyConfigProperties,
} satisfies TProperties;

/** Settings of services that verify access tokens against identity's published key set. */
export const AuthConfigProperties = {
  AUTH_JWKS_URL: Type.String({ pattern: '^https?://', description: "URL of identity's JWKS, e.g. http://127.0.0.1:4001/.well-known/jwks.json" }),
} satisfies TProperties;

export type BaseConfig = Static<TObject<typeof BaseConfigProperties>>;

/** Raised when the environment does not satisfy a service's config schema; names each variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(`invalid configuration: ${problems.map((p) => `${p.variable} ${p.message}`).join('; ')}`);
  }
}

interface AjvLikeError { instancePath?: string; keyword?: string; message?: string; params?: Record<string, unknown> }

/**
 * Builds a service's config schema: the base properties, the service's own, and per-service
 * defaults (e.g. its PORT and MONGO_DB).
 */
export function defineConfig<P extends TProperties>(own: P, defaults: Partial<Record<keyof typeof BaseConfigProperties | keyof P, unknown>> = {}) {
  const props: Record<string, unknown> = { ...BaseConfigProperties, ...own };
  for (const [key, value] of Object.entries(defaults)) {
    const prop = props[key];
    if (prop) props[key] = { ...(prop as object), default: value };
  }
  return Type.Object(props as typeof BaseConfigProperties & P, { additionalProperties: true });
}

/**
 * Reads and validates a config from the environment (types coerced, defaults applied).
 * @throws ConfigError naming every missing or malformed variable.
 */
export function loadConfig<S extends TObject>(schema: S, env: NodeJS.ProcessEnv = process.env): Static<S> {
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') data[k] = v;
  try {
    return envSchema<Static<S>>({ schema, data, dotenv: false });
  } catch (err) {
    const errors = (err as { errors?: AjvLikeError[] }).errors ?? [];
    if (!errors.length) throw new ConfigError([{ variable: '(config)', message: (err as Error).message }]);
    throw new ConfigError(errors.map((e) => {
      const missing = e.keyword === 'required' ? String(e.params?.missingProperty ?? '') : '';
      const variable = missing || (e.instancePath ?? '').replace(/^\//, '') || '(config)';
      return { variable, message: missing ? 'is required' : (e.message ?? 'is invalid') };
    }));
  }
}
