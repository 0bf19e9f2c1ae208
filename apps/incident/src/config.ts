import { AuthConfigProperties, defineConfig } from '@pipp/service-kit';
import { Type, type Static } from '@sinclair/typebox';

/**
 * Configuration of the incident service, from the environment (docs/configuration.md, and this
 * service's own variables in docs/services/incident.md): the kit's base settings, the identity key
 * set to verify tokens with, and the delivery channels, fan-out and retry settings below.
 */
export const ConfigSchema = defineConfig({
  ...AuthConfigProperties,
  INCIDENT_PSEUDONYM_KEY: Type.String({ minLength: 32, description: 'Secret (≥ 32 chars) keying the pseudonymous references kept in incident records after an erasure; no default' }),
  SMTP_URL: Type.String({ pattern: '^smtps?://', default: 'smtp://127.0.0.1:2525', description: 'SMTP server for e-mail notices (nodemailer URL, e.g. smtp://user:pass@host:587)' }),
  MAIL_FROM: Type.String({ default: 'PIPP security <security@pipp.local>', description: 'From address of e-mail notices' }),
  SMS_PROVIDER_URL: Type.String({ default: '', pattern: '^(https?://.*)?$', description: 'HTTP endpoint of the SMS provider (POST JSON {to, text, reference}); empty: the local sink collection' }),
  TELEPHONE_PROVIDER_URL: Type.String({ default: '', pattern: '^(https?://.*)?$', description: 'HTTP endpoint of the telephone (voice call) provider; empty: the local sink collection' }),
  PROVIDER_TOKEN: Type.String({ default: '', description: 'Bearer token sent to the SMS and telephone providers (empty: none)' }),
  PUSH_SIGNING_SECRET: Type.String({ default: '', description: 'HMAC-SHA256 key signing push webhooks (header x-pipp-signature); empty: unsigned' }),
  CONTACT_INFO: Type.String({ minLength: 1, default: 'Contact us through the system: Help → Contact us, or reply to this message.', description: 'How subjects reach us; closes every notice (preamble, 2.2)' }),
  ANNOUNCEMENT_THRESHOLD: Type.Integer({ minimum: 0, default: 200_000, description: 'More subjects than this in one notice: a public announcement instead of one-by-one notices (5.4.2)' }),
  FANOUT_BATCH_SIZE: Type.Integer({ minimum: 1, maximum: 1000, default: 500, description: 'Subjects per fan-out batch event' }),
  DISPATCH_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 500, default: 32, description: 'Deliveries sent in parallel by one instance' }),
  DISPATCH_POLL_MS: Type.Integer({ minimum: 10, maximum: 60_000, default: 500, description: 'Dispatcher poll interval when idle (ms)' }),
  DELIVERY_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 20, default: 3, description: 'Attempts per channel before falling back to the next channel' }),
  DELIVERY_RETRY_BASE_MS: Type.Integer({ minimum: 1, maximum: 3_600_000, default: 30_000, description: 'First retry delay of a failed delivery (ms), doubled per attempt' }),
  DELIVERY_RETRY_MAX_MS: Type.Integer({ minimum: 1, maximum: 86_400_000, default: 3_600_000, description: 'Upper bound of a retry delay (ms)' }),
  DELIVERY_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 120_000, default: 10_000, description: 'Timeout of one delivery attempt (ms)' }),
  INCIDENT_RECORD_RETENTION_DAYS: Type.Integer({ minimum: 1, maximum: 36_500, default: 1095, description: 'Days pseudonymous incident notification records are kept after an erasure (PIPL art. 57 evidence)' }),
}, { PORT: 4005, MONGO_DB: 'pipp_incident' });
export type Config = Static<typeof ConfigSchema>;
