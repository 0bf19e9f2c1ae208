import { AuthConfigProperties, defineConfig } from '@pipp/service-kit';
import { Type, type Static } from '@sinclair/typebox';

const Url = (service: string, port: number) =>
  Type.String({ pattern: '^https?://[^/?#]+/?$', default: `http://127.0.0.1:${port}`, description: `Base URL of the ${service} service (origin only)` });
const Ms = (def: number, min: number, max: number, description: string) => Type.Integer({ minimum: min, maximum: max, default: def, description });
const Count = (def: number, min: number, max: number, description: string) => Type.Integer({ minimum: min, maximum: max, default: def, description });

/**
 * Configuration of the gateway, from the environment (docs/configuration.md, docs/services/gateway.md):
 * the kit's base settings, identity's key set, the upstream services, the edge (trusted proxies, CORS,
 * body limit), rate limits, upstream timeouts and circuit breaking, the combined OpenAPI document and
 * the audit trail (stored in the gateway's own database, `pipp_gateway`).
 */
export const ConfigSchema = defineConfig({
  ...AuthConfigProperties,
  IDENTITY_URL: Url('identity', 4001),
  CONSENT_URL: Url('consent', 4002),
  DATA_SHARING_URL: Url('data-sharing', 4003),
  RETENTION_URL: Url('retention', 4004),
  INCIDENT_URL: Url('incident', 4005),
  TRUSTED_PROXIES: Type.String({
    default: '',
    pattern: '^[0-9A-Fa-f.:/,\\s]*$',
    description: 'Comma-separated IPs/CIDRs of proxies in front of the gateway whose X-Forwarded-For is believed; empty: none (the socket address is the client)',
  }),
  CORS_ORIGINS: Type.String({ default: '', description: 'Comma-separated client origins allowed by CORS (e.g. https://app.example.com); empty: no cross-origin access' }),
  CLIENT_TIMEOUT_MS: Ms(30_000, 100, 600_000, 'Bound on receiving a whole request from a client, and on a silent client connection (ms); slow clients are cut off'),
  BODY_LIMIT_BYTES: Count(1024 * 1024, 1024, 16 * 1024 * 1024, "Largest accepted request body (bytes); larger ones get 413. The default fits the largest a service admits (retention's shutdown with 10 000 affected subjects); each service bounds its own routes"),
  UPSTREAM_TIMEOUT_MS: Ms(5000, 50, 120_000, 'Bound on an upstream answer: headers and body each (ms); then 504'),
  UPSTREAM_CONNECT_TIMEOUT_MS: Ms(2000, 50, 60_000, 'Bound on opening a connection to an upstream (ms); then 503'),
  UPSTREAM_CONNECTIONS: Count(64, 1, 4096, 'Keep-alive connections per upstream (undici pool)'),
  CIRCUIT_FAILURE_THRESHOLD: Count(5, 1, 1000, 'Consecutive upstream failures (refused, reset, timed out) that open its circuit'),
  CIRCUIT_OPEN_MS: Ms(5000, 100, 600_000, 'How long an open circuit answers 503 at once before one trial request (ms)'),
  RATE_LIMIT_WINDOW_MS: Ms(60_000, 1000, 3_600_000, 'Window of every rate limit (ms)'),
  RATE_LIMIT_IP_MAX: Count(600, 1, 1_000_000, 'Requests per window per client IP (IPv6: per /64)'),
  RATE_LIMIT_SUBJECT_MAX: Count(300, 1, 1_000_000, 'Requests per window per authenticated token subject (sub)'),
  RATE_LIMIT_SENSITIVE_MAX: Count(10, 1, 100_000, 'Requests per window per client IP to sign-in, code, password and token endpoints'),
  RATE_LIMIT_SENSITIVE_PATHS: Type.String({
    default: '^/v1/[a-z-]+/public/(?:[^/]+/)*(?:sign-in|signin|login|sign-up|signup|register|registrations?|sessions?|tokens?|service-tokens|refresh|codes?|otp|verify|verifications?|passwords?|password-resets?)(?:/|$)',
    description: 'Regular expression over the request path selecting the endpoints that get RATE_LIMIT_SENSITIVE_MAX',
  }),
  OPENAPI_REFRESH_MS: Ms(60_000, 1000, 3_600_000, 'How often the upstream OpenAPI documents (and the route roles they declare) are fetched again (ms)'),
  OPENAPI_FETCH_TIMEOUT_MS: Ms(2000, 50, 60_000, 'Bound on fetching one upstream OpenAPI document (ms)'),
  AUDIT_REQUIRE_PURPOSE: Type.Boolean({ default: true, description: "Staff and services must state X-PIPP-Purpose to reach a data subject's data (subjects/ routes)" }),
  AUDIT_FLUSH_MS: Ms(200, 10, 60_000, 'Audit records are written in batches at least this often (ms)'),
  AUDIT_BATCH_SIZE: Count(200, 1, 10_000, 'Audit records per insert'),
  AUDIT_BUFFER_MAX: Count(10_000, 10, 1_000_000, 'Audit records waiting for the database before audited requests are refused with 503'),
  AUDIT_RETENTION_DAYS: Count(180, 1, 3650, 'Retention period of audit records (days); older ones are deleted by a daily sweep'),
}, { PORT: 4000, MONGO_DB: 'pipp_gateway' });
export type Config = Static<typeof ConfigSchema>;
