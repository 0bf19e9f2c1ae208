import { ERASURE_PARTICIPANTS, type ErasureParticipant } from '@pipp/contracts';
import { AuthConfigProperties, defineConfig } from '@pipp/service-kit';
import { Type, type Static } from '@sinclair/typebox';

const ID_LIST = '^([A-Za-z0-9_-]+(,[A-Za-z0-9_-]+)*)?$';

/**
 * Configuration of the retention service, from the environment (docs/services/retention.md): the
 * kit's base settings, the identity key set to verify tokens with, and this service's own. Durations
 * are in ms unless the name says days or hours.
 */
export const ConfigSchema = defineConfig({
  ...AuthConfigProperties,
  ERASURE_PARTICIPANTS: Type.String({ default: ERASURE_PARTICIPANTS.join(','), pattern: `^(${ERASURE_PARTICIPANTS.join('|')})(,(${ERASURE_PARTICIPANTS.join('|')}))*$`, description: 'The erasure participants the saga waits for, comma-separated' }),
  ERASURE_DEADLINE_DAYS: Type.Integer({ minimum: 1, maximum: 90, default: 15, description: 'Days to answer an erasure request (deadline = request time + this)' }),
  ERASURE_ESCALATE_BEFORE_HOURS: Type.Integer({ minimum: 0, maximum: 2160, default: 72, description: 'Hours before the deadline at which the DPO is told about a request not yet complete' }),
  ERASURE_RETRY_BASE_MS: Type.Integer({ minimum: 10, maximum: 86_400_000, default: 30_000, description: 'First redelivery delay to a silent or failed participant (ms), doubled per attempt' }),
  ERASURE_RETRY_MAX_MS: Type.Integer({ minimum: 10, maximum: 86_400_000, default: 3_600_000, description: 'Longest redelivery delay (ms)' }),
  ERASURE_MAX_AUTO_ATTEMPTS: Type.Integer({ minimum: 0, maximum: 100, default: 10, description: 'Automatic redeliveries before a participant is left to an operator retry' }),
  SAGA_TICK_MS: Type.Integer({ minimum: 20, maximum: 600_000, default: 5000, description: 'How often the scheduler looks for due retries, escalations, purges, sweeps and restores (ms)' }),
  DPO_ACCOUNT_IDS: Type.String({ default: '', pattern: ID_LIST, description: 'Account ids of the DPO, notified (through incident) of escalated erasure requests' }),
  SWEEP_INTERVAL_MS: Type.Integer({ minimum: 0, maximum: 31 * 86_400_000, default: 86_400_000, description: 'Interval of scheduled expiry sweeps (ms); 0 turns them off' }),
  SWEEP_BATCH_SIZE: Type.Integer({ minimum: 1, maximum: 10_000, default: 500, description: 'Records per batch a participant handles in a sweep' }),
  LEGAL_HOLD_MAX_DAYS: Type.Integer({ minimum: 1, maximum: 36_500, default: 10_950, description: 'Longest a legal hold may run from when it is placed (days; default 30 years, the longest archive period of PRC accounting rules); renew it if the law asks for longer' }),
  CONSENT_URL: Type.String({ pattern: '^https?://', default: 'http://127.0.0.1:4002', description: "Base URL of the consent service: a shutdown's function and its data categories are checked against its catalogue" }),
  BACKUP_RETENTION_DAYS: Type.Integer({ minimum: 1, maximum: 3650, default: 30, description: 'Default lifetime of a backup generation (days) when its expiry is not given' }),
}, { PORT: 4004, MONGO_DB: 'pipp_retention' });
export type Config = Static<typeof ConfigSchema>;

/** The participants named in ERASURE_PARTICIPANTS, in the contracts' order. */
export function registeredParticipants(config: Pick<Config, 'ERASURE_PARTICIPANTS'>): ErasureParticipant[] {
  const named = new Set(config.ERASURE_PARTICIPANTS.split(','));
  return ERASURE_PARTICIPANTS.filter((p) => named.has(p));
}
