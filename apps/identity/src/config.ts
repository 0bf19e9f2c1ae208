import { defineConfig } from '@pipp/service-kit';
import { Type, type Static } from '@sinclair/typebox';

/**
 * Configuration of the identity service, from the environment (docs/configuration.md,
 * docs/services/identity.md): the kit's base settings and this service's own. identity verifies the
 * tokens it signs with its own key ring, so it needs no AUTH_JWKS_URL. Secrets have no defaults.
 */
export const ConfigSchema = defineConfig({
  IDENTITY_SIGNING_KEY: Type.String({ minLength: 100, description: 'Current ES256 signing key: PKCS#8 PEM of an EC P-256 private key (secret)' }),
  IDENTITY_PREVIOUS_KEYS: Type.String({ default: '', description: 'Earlier signing keys still published in the JWKS during a rotation: concatenated PEM blocks (SPKI public or PKCS#8 private keys)' }),
  SERVICE_CLIENT_SECRETS: Type.String({ minLength: 2, description: 'JSON map of service name to client secret for service tokens (secret)' }),
  CONSENT_URL: Type.String({ pattern: '^https?://', default: 'http://127.0.0.1:4002', description: 'Base URL of the consent service (decision API)' }),
  ACCESS_TOKEN_TTL_S: Type.Integer({ minimum: 30, maximum: 3600, default: 600, description: 'Lifetime of access tokens (s)' }),
  SERVICE_TOKEN_TTL_S: Type.Integer({ minimum: 30, maximum: 3600, default: 600, description: 'Lifetime of service tokens (s)' }),
  REFRESH_TOKEN_TTL_DAYS: Type.Integer({ minimum: 1, maximum: 365, default: 30, description: 'Lifetime of a session and its refresh tokens (days), counted from the last refresh' }),
  REFRESH_REUSE_GRACE_S: Type.Integer({ minimum: 0, maximum: 60, default: 10, description: 'For this long after a refresh (s), the refresh token it spent still returns the tokens that refresh issued (parallel refreshes from one client), instead of counting as reuse; 0 turns it off' }),
  PHONE_REGIONS: Type.String({ default: 'CN', pattern: '^[A-Z]{2}(,[A-Z]{2})*$', description: 'Regions whose mobile numbers may register (ISO 3166-1 alpha-2, comma-separated); the first is the default for numbers without a country code' }),
  OTP_TTL_S: Type.Integer({ minimum: 60, maximum: 600, default: 600, description: 'Validity of a one-time code (s); at most 10 minutes' }),
  OTP_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 10, default: 5, description: 'Wrong tries after which a one-time code is dead' }),
  OTP_RESEND_INTERVAL_S: Type.Integer({ minimum: 0, maximum: 3600, default: 60, description: 'Minimum wait between two codes to one number (s)' }),
  OTP_MAX_PER_NUMBER_PER_HOUR: Type.Integer({ minimum: 1, maximum: 100, default: 5, description: 'Codes sent to one number per hour' }),
  OTP_MAX_PER_IP_PER_HOUR: Type.Integer({ minimum: 1, maximum: 10000, default: 30, description: 'Codes requested from one client IP per hour' }),
  SMS_PROVIDER: Type.Union([Type.Literal('sink'), Type.Literal('http')], { default: 'sink', description: "sink: record messages in the sms_sink collection (local, tests); http: POST them as JSON to SMS_HTTP_URL" }),
  SMS_HTTP_URL: Type.String({ default: '', description: 'Endpoint of the SMS provider adapter when SMS_PROVIDER=http' }),
  SIGNIN_LOCK_THRESHOLD: Type.Integer({ minimum: 2, maximum: 100, default: 5, description: 'Failed sign-ins for one number before it is locked' }),
  SIGNIN_LOCK_S: Type.Integer({ minimum: 10, maximum: 86400, default: 900, description: 'Duration of a temporary sign-in lock (s)' }),
  SIGNIN_DELAY_BASE_MS: Type.Integer({ minimum: 0, maximum: 5000, default: 250, description: 'Growing delay after failed sign-ins: base × 2^(failures-1) (ms), capped at SIGNIN_DELAY_MAX_MS' }),
  SIGNIN_DELAY_MAX_MS: Type.Integer({ minimum: 0, maximum: 30000, default: 3000, description: 'Upper bound of the growing delay (ms)' }),
  SIGNIN_MAX_FAILURES_PER_IP: Type.Integer({ minimum: 1, maximum: 100000, default: 100, description: 'Failed sign-ins from one client IP per hour before it is refused' }),
  PASSWORD_MIN_SCORE: Type.Integer({ minimum: 0, maximum: 4, default: 3, description: 'Minimum zxcvbn score (0–4) of a new password' }),
  PASSWORD_MIN_LENGTH: Type.Integer({ minimum: 8, maximum: 64, default: 8, description: 'Minimum length of a new password (characters)' }),
  RISK_CODE_THRESHOLD: Type.Integer({ minimum: 0, maximum: 100, default: 50, description: 'Risk score (0–100) from which sign-in demands a one-time code' }),
  DEVICE_RETENTION_DAYS: Type.Integer({ minimum: 1, maximum: 3650, default: 180, description: 'Retention period of device and risk records after last use (days), until a sweep of the retention service brings its period for device-info' }),
  ACTIVITY_RETENTION_DAYS: Type.Integer({ minimum: 1, maximum: 3650, default: 90, description: 'Retention period of activity log entries (days), until a sweep of the retention service brings its period for activity-log' }),
  AUDIT_RETENTION_DAYS: Type.Integer({ minimum: 1, maximum: 3650, default: 1095, description: 'Retention period of account-change audit records (days)' }),
  IDENTITY_BOOTSTRAP_STAFF: Type.String({ default: '', description: 'JSON array of staff accounts to create at start if absent: [{"id"?,"phone","role":"dpo"|"operator","password","displayName"}] (secret; id stf_ and 32 hex digits, generated when absent)' }),
  TRUST_PROXY: Type.String({ default: '', description: "Proxies whose X-Forwarded-For is trusted for the client IP (e.g. the gateway's address, 'loopback'); empty trusts none" }),
}, { PORT: 4001, MONGO_DB: 'pipp_identity' });
export type Config = Static<typeof ConfigSchema>;
