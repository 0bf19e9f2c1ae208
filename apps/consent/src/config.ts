import { AuthConfigProperties, defineConfig } from '@pipp/service-kit';
import { Type, type Static } from '@sinclair/typebox';

/**
 * Configuration of the consent service, from the environment (docs/configuration.md,
 * docs/services/consent.md): the kit's base settings, the identity key set to verify tokens with, and
 * this service's own.
 */
export const ConfigSchema = defineConfig({
  ...AuthConfigProperties,
  HOME_REGION: Type.String({ pattern: '^[A-Z]{2}$', default: 'CN', description: 'ISO 3166-1 alpha-2 home region (5.3): elsewhere is cross-border' }),
  POLICY_NOTICE_DAYS: Type.Integer({ minimum: 0, maximum: 365, default: 7, description: 'Default notice period (days) of a new policy version before continued use counts as acceptance (VI)' }),
  PROJECTION_REFRESH_MS: Type.Integer({ minimum: 50, maximum: 60_000, default: 500, description: 'How often (ms) each instance re-reads recent ledger, catalogue, policy and shutdown changes besides events' }),
  CONSENT_PSEUDONYM_KEY: Type.String({ minLength: 32, description: 'Secret (≥ 32 characters) keying the pseudonyms that replace subject ids in consent proofs kept after erasure' }),
  CONSENT_PROOF_RETENTION_DAYS: Type.Integer({ minimum: 0, maximum: 36_500, default: 1095, description: 'How long (days) pseudonymized proof of consent is kept after erasure when no legal hold says longer' }),
  CONTROLLER_NAME: Type.String({ minLength: 1, maxLength: 200, default: 'PIPP platform operator', description: 'PI controller named in consent receipts' }),
  CONTROLLER_CONTACT: Type.String({ minLength: 1, maxLength: 200, default: 'dpo@pipp.local', description: 'Contact of the controller / DPO named in consent receipts' }),
  PUBLIC_BASE_URL: Type.String({ pattern: '^https?://', default: 'http://127.0.0.1:4000', description: 'Public origin (the gateway) used for policy links in consent receipts' }),
}, { PORT: 4002, MONGO_DB: 'pipp_consent' });
export type Config = Static<typeof ConfigSchema>;
