import { AuthConfigProperties, defineConfig } from '@pipp/service-kit';
import { Type, type Static } from '@sinclair/typebox';

/**
 * Configuration of the data-sharing service, from the environment (docs/configuration.md and
 * docs/services/data-sharing.md): the kit's base settings, the identity key set to verify tokens with,
 * and this service's own. Secrets (`SERVICE_CLIENT_SECRETS`, `DATA_ENCRYPTION_KEY`) have no default.
 */
export const ConfigSchema = defineConfig({
  ...AuthConfigProperties,
  IDENTITY_URL: Type.String({ pattern: '^https?://', default: 'http://127.0.0.1:4001', description: 'identity base URL (service tokens)' }),
  CONSENT_URL: Type.String({ pattern: '^https?://', default: 'http://127.0.0.1:4002', description: 'consent base URL (decision API)' }),
  SERVICE_CLIENT_SECRETS: Type.String({
    minLength: 2,
    description: 'JSON map service name → client secret; this service uses its own entry ("data-sharing") to obtain service tokens',
  }),
  DATA_ENCRYPTION_KEY: Type.String({
    pattern: '^[A-Za-z0-9+/_-]{43}=?$',
    description: '32 random bytes, base64 or base64url: seals webhook secrets and PI received from third parties at rest (AES-256-GCM), and keys recipient-specific subject pseudonyms',
  }),
  HOME_REGION: Type.String({ pattern: '^[A-Z]{2}$', default: 'CN', description: 'Where PI is stored (policy 5.3); any other country or region is cross-border. HK, MO and TW are outside CN' }),
  WEBHOOK_ALLOWED_HOSTS: Type.String({
    default: '',
    pattern: '^\\s*[A-Za-z0-9.*:\\[\\]_-]*(\\s*,\\s*[A-Za-z0-9.*:\\[\\]_-]+)*\\s*$',
    description: 'Comma-separated host names recipient webhooks may point at; `*.example.com` allows sub-domains. Empty: no webhook host is allowed',
  }),
  WEBHOOK_ALLOW_LOOPBACK: Type.Boolean({ default: false, description: 'Allow webhooks on loopback addresses (local development and tests only); plain http is then allowed for loopback' }),
  WEBHOOK_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 5000, description: 'Per-delivery timeout (ms)' }),
  WEBHOOK_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 100, default: 15, description: 'Delivery attempts of a deletion notice before it is marked failed (an operator can retry it)' }),
  WEBHOOK_BACKOFF_MS: Type.Integer({ minimum: 10, maximum: 3_600_000, default: 5000, description: 'First retry delay of a webhook delivery (ms), doubled per attempt with ±20 % jitter' }),
  WEBHOOK_BACKOFF_MAX_MS: Type.Integer({ minimum: 10, maximum: 86_400_000, default: 6 * 3_600_000, description: 'Upper bound of a webhook retry delay (ms)' }),
  WEBHOOK_POLL_MS: Type.Integer({ minimum: 10, maximum: 60_000, default: 1000, description: 'How often the notice dispatcher looks for due deliveries (ms)' }),
  WEBHOOK_SIGNATURE_TOLERANCE_S: Type.Integer({ minimum: 10, maximum: 3600, default: 300, description: 'Accepted clock skew of signed acknowledgments from recipients (s)' }),
  ANONYMIZATION_K: Type.Integer({ minimum: 2, maximum: 1000, default: 5, description: 'Minimum k of k-anonymity over the declared quasi-identifiers for a release without consent (policy 3.4)' }),
  RELEASE_MAX_ROWS: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 50_000, description: 'Largest dataset accepted by the anonymization check (rows)' }),
  RELEASE_BODY_LIMIT: Type.Integer({ minimum: 1024, maximum: 100 * 1024 * 1024, default: 16 * 1024 * 1024, description: 'Body limit of the release routes (bytes)' }),
}, { PORT: 4003, MONGO_DB: 'pipp_data_sharing' });
export type Config = Static<typeof ConfigSchema>;
