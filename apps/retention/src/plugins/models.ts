import type {
  DataCategory, ErasureGround, ErasureParticipant, ErasureScope, LegalBasis, Role, ServiceName,
} from '@pipp/contracts';
import { outboxPlugin } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Schema, type Model } from 'mongoose';
import type { ErasureOrigin } from '../domain/grounds.js';
import type { LegalHoldItem, Refusal } from '../domain/holds.js';
import type { RetentionPolicyData } from '../domain/policies.js';
import type { Counts, Escalation, Participants } from '../domain/saga.js';
import type { SweepParticipants } from '../domain/sweeps.js';
import { erasureReplySchema, sweepReplySchema, type ErasureReplyRecord, type SweepReplyRecord } from '../events/participant-protocol.js';

/** Who did something: a token's role and subject (a data subject id, staff account id or service). */
export interface Actor { role: Role; actorId: string }

/**
 * An erasure request and its saga state (policy 4.1, 4.2, 5.1, 2.4.2(5)). Holds ids, grounds and
 * counts only, never PI in clear, so it outlives the subject's data (until its own retention period,
 * policy `erasure-request`). `kind`: `erasure` (asked for), `purge` (kept-by-law records whose date
 * came), `restore` (re-applied after a backup restore).
 */
export interface ErasureRequestDoc {
  _id: string;
  kind: 'erasure' | 'purge' | 'restore';
  subjectId: string;
  scope: ErasureScope;
  scopeKey: string;
  /** Unique while open (`<kind>|<subject>|<scope>`), `closed:<id>` once closed: one open request per subject and scope. */
  openKey: string;
  ground: ErasureGround;
  origin: ErasureOrigin;
  requestedBy: Actor;
  reference?: string;
  status: 'in-progress' | 'completed' | 'refused';
  refusal?: Refusal;
  legalHolds: LegalHoldItem[];
  deadline: Date;
  createdAt: Date;
  updatedAt: Date;
  completedAt?: Date;
  attempt: number;
  participants: Participants;
  escalations: Escalation[];
  joins: { at: Date; origin: ErasureOrigin; ground: ErasureGround; requestedBy: Actor }[];
  totals: Counts;
  nextActionAt: Date | null;
  purgeIsolated?: boolean;
  restoreId?: string;
  /** SHA-256 (hex) of each status key handed out for this request (`statusKeyHash`); never shown. */
  statusKeys?: string[];
  /** Optimistic concurrency: every saga write is conditional on it and increments it. */
  rev: number;
}

export interface RetentionPolicyDoc extends RetentionPolicyData {
  _id: string;
  version: number;
  updatedAt: Date;
  updatedBy: Actor;
}

export interface RetentionPolicyVersionDoc {
  _id: string;
  policyId: string;
  version: number;
  change: 'created' | 'updated' | 'deleted';
  policy: RetentionPolicyData | null;
  at: Date;
  by: Actor;
  note?: string;
}

/** Append-only record of what staff (and services) did here or read about a subject. */
export interface AuditRecordDoc {
  _id: string;
  at: Date;
  actor: Actor;
  action: string;
  target: { type: string; id: string };
  subjectId?: string;
  clause?: string;
  details?: Record<string, unknown>;
}

export interface LegalHoldDoc {
  _id: string;
  subjectId: string;
  categories: DataCategory[];
  mode: 'isolate' | 'block';
  legalBasis: Exclude<LegalBasis, 'consent'>;
  evidenceRef: string;
  until: Date;
  status: 'active' | 'released';
  createdAt: Date;
  createdBy: Actor;
  releasedAt?: Date;
  releasedBy?: Actor;
}

export interface KeptRecordDoc {
  _id: string;
  requestId: string;
  subjectId: string;
  participant: ErasureParticipant;
  category: DataCategory;
  legalBasis: LegalBasis;
  purgeAt: Date;
  reason: string;
  state: 'isolated' | 'purge-requested' | 'purged';
  purgeRequestId?: string;
  recordedAt: Date;
  purgedAt?: Date;
}

export interface SuppressionDoc {
  _id: string;
  subjectId: string;
  scope: ErasureScope;
  ground: ErasureGround;
  requestedAt: Date;
  completedAt: Date | null;
  status: 'active' | 'lifted';
  liftedAt?: Date;
}

/**
 * Where the open erasure request of a subject and scope is (`_id`: the request's `openKey`), so that
 * opening a request finds the one to join by `_id` (FerretDB 1.24 reads the whole request collection
 * for any other filter). The unique `openKey` index of the requests stays the guard against two open
 * requests; a pointer to a closed or missing request is stale and ignored.
 */
export interface OpenRequestDoc {
  _id: string;
  requestId: string;
}

export interface BackupGenerationDoc {
  _id: string;
  service: ServiceName;
  takenAt: Date;
  expiresAt: Date;
  location: string;
  reference?: string;
  status: 'held' | 'expired';
  recordedAt: Date;
  recordedBy: Actor;
}

/**
 * A group's erasure requests (a restore's, a shutdown's) still in progress when last counted, at
 * `openRequestsCountedAt`: stored for the group's view (ErasureService.groupProgress).
 */
export interface OpenCount {
  openRequests?: number | undefined;
  openRequestsCountedAt?: Date | undefined;
}

export interface RestoreDoc extends OpenCount {
  _id: string;
  generationId: string;
  service: ServiceName;
  status: 'reapplying' | 'clean';
  planned: number;
  planningDone: boolean;
  cursor: string | null;
  requestedAt: Date;
  requestedBy: Actor;
  cleanAt?: Date;
}

export interface SweepDoc {
  _id: string;
  kind: 'scheduled' | 'manual' | 'shutdown';
  shutdownId?: string;
  functionId?: string;
  asOf: Date;
  rules: unknown[];
  /** What the legal holds in force at `asOf` cover: the participants leave it (policy 4.1). */
  heldSubjects?: { subjectId: string; categories: DataCategory[] }[];
  batchSize: number;
  status: 'running' | 'completed' | 'failed';
  participants: SweepParticipants;
  attempt: number;
  expiredSubjects: number;
  startedAt: Date;
  startedBy: Actor;
  completedAt?: Date;
  nextActionAt: Date | null;
  rev: number;
}

/** One document (`periods`) whose outbox announces the retention periods in force (policy 5.1, 5.2). */
export interface AnnouncementDoc { _id: string; at: Date }

export interface ScheduleDoc { _id: string; nextRunAt: Date; lastRunAt?: Date; lastSweepId?: string }

export interface ShutdownDoc extends OpenCount {
  _id: string;
  functionId: string;
  title: string;
  effectiveAt: Date;
  action: 'erase' | 'anonymize';
  /** What the function collected: collection of all of it stops. */
  categories: DataCategory[];
  /** Of those, what is erased or anonymized: the categories no other active function processes (2.1). */
  erasedCategories: DataCategory[];
  /** The rest, kept for the functions that still process it. */
  keptCategories: { category: DataCategory; usedBy: string[] }[];
  notice: { mode: 'individual' | 'announcement'; notificationIds: string[] };
  affectedSubjects: string[];
  /** How many of the affected subjects' erasure requests are opened (they open in batches, in the background). */
  erasuresOpened?: number;
  status: 'collection-stopped' | 'erasing' | 'completed';
  sweepId: string;
  createdAt: Date;
  createdBy: Actor;
  completedAt?: Date;
}

export interface ResidencyRecordDoc {
  _id: string;
  service: ServiceName;
  homeRegion: string;
  stores: { store: string; location: string }[];
  exception?: { clause: string; reference: string };
  flagged: boolean;
  firstSeenAt: Date;
  lastSeenAt: Date;
  instances: number;
}

export interface Store {
  requests: Model<ErasureRequestDoc>;
  openRequests: Model<OpenRequestDoc>;
  policies: Model<RetentionPolicyDoc>;
  policyVersions: Model<RetentionPolicyVersionDoc>;
  audit: Model<AuditRecordDoc>;
  holds: Model<LegalHoldDoc>;
  kept: Model<KeptRecordDoc>;
  suppressions: Model<SuppressionDoc>;
  backups: Model<BackupGenerationDoc>;
  restores: Model<RestoreDoc>;
  sweeps: Model<SweepDoc>;
  schedules: Model<ScheduleDoc>;
  announcements: Model<AnnouncementDoc>;
  shutdowns: Model<ShutdownDoc>;
  residency: Model<ResidencyRecordDoc>;
  replies: Model<ErasureReplyRecord>;
  sweepReplies: Model<SweepReplyRecord>;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The retention service's models (its own database, pipp_retention). */
    store: Store;
  }
}

const opts = { versionKey: false, minimize: false } as const;
const Mixed = Schema.Types.Mixed;
const actor = { role: { type: String, required: true }, actorId: { type: String, required: true } };

/** Registers the retention service's models, their indexes (plain, compound, unique only) and outboxes. */
export const modelsPlugin = fp(async function models(app: FastifyInstance) {
  // Schemas are declared untyped (mongoose's inference fights Mixed paths); each model gets its document type here.
  const m = <T>(name: string, schema: Schema) => app.mongo.model(name, schema) as unknown as Model<T>;

  const requestSchema = new Schema({
    _id: String,
    kind: { type: String, required: true },
    subjectId: { type: String, required: true },
    scope: { type: Mixed, required: true },
    scopeKey: { type: String, required: true },
    openKey: { type: String, required: true },
    ground: { type: String, required: true },
    origin: { type: String, required: true },
    requestedBy: actor,
    reference: String,
    status: { type: String, required: true },
    refusal: Mixed,
    legalHolds: { type: [Mixed], default: [] },
    deadline: { type: Date, required: true },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
    completedAt: Date,
    attempt: { type: Number, required: true },
    participants: { type: Mixed, default: {} },
    escalations: { type: [Mixed], default: [] },
    joins: { type: [Mixed], default: [] },
    totals: { type: Mixed, default: () => ({ erased: 0, anonymized: 0, kept: 0 }) },
    nextActionAt: { type: Date, default: null },
    purgeIsolated: Boolean,
    restoreId: String,
    statusKeys: { type: [String], default: undefined },
    rev: { type: Number, required: true },
  }, { ...opts, collection: 'erasure_requests' }).plugin(outboxPlugin);
  requestSchema.index({ openKey: 1 }, { unique: true });
  requestSchema.index({ subjectId: 1, createdAt: -1 });
  requestSchema.index({ status: 1, nextActionAt: 1 });
  requestSchema.index({ status: 1, createdAt: -1 });
  requestSchema.index({ restoreId: 1, status: 1 });
  requestSchema.index({ reference: 1, status: 1 });

  const policySchema = new Schema({
    _id: String, category: { type: String, required: true }, service: String, periodDays: { type: Number, required: true },
    startsFrom: { type: String, required: true }, criterion: { type: String, required: true }, lawCitation: String,
    action: { type: String, required: true }, keepOnErasure: { type: Boolean, default: false }, rationale: String,
    version: { type: Number, required: true }, updatedAt: { type: Date, required: true }, updatedBy: actor,
  }, { ...opts, collection: 'retention_policies' });

  const versionSchema = new Schema({
    _id: String, policyId: { type: String, required: true }, version: { type: Number, required: true }, change: { type: String, required: true },
    policy: Mixed, at: { type: Date, required: true }, by: actor, note: String,
  }, { ...opts, collection: 'retention_policy_versions' });
  versionSchema.index({ policyId: 1, version: -1 });

  const auditSchema = new Schema({
    _id: String, at: { type: Date, required: true }, actor, action: { type: String, required: true },
    target: { type: Mixed, required: true }, subjectId: String, clause: String, details: Mixed,
  }, { ...opts, collection: 'audit_records' });
  auditSchema.index({ at: -1 });
  auditSchema.index({ subjectId: 1, at: -1 });

  const holdSchema = new Schema({
    _id: String, subjectId: { type: String, required: true }, categories: { type: [String], default: [] }, mode: { type: String, required: true },
    legalBasis: { type: String, required: true }, evidenceRef: { type: String, required: true }, until: { type: Date, required: true },
    status: { type: String, required: true }, createdAt: { type: Date, required: true }, createdBy: actor, releasedAt: Date, releasedBy: Mixed,
  }, { ...opts, collection: 'legal_holds' }).plugin(outboxPlugin);
  holdSchema.index({ subjectId: 1, status: 1 });

  const keptSchema = new Schema({
    _id: String, requestId: { type: String, required: true }, subjectId: { type: String, required: true }, participant: { type: String, required: true },
    category: { type: String, required: true }, legalBasis: { type: String, required: true }, purgeAt: { type: Date, required: true },
    reason: { type: String, default: '' }, state: { type: String, required: true }, purgeRequestId: String, recordedAt: { type: Date, required: true }, purgedAt: Date,
  }, { ...opts, collection: 'kept_records' });
  keptSchema.index({ state: 1, purgeAt: 1 });
  keptSchema.index({ subjectId: 1 });
  keptSchema.index({ purgeRequestId: 1 });

  const suppressionSchema = new Schema({
    _id: String, subjectId: { type: String, required: true }, scope: { type: Mixed, required: true }, ground: { type: String, required: true }, requestedAt: { type: Date, required: true },
    completedAt: { type: Date, default: null }, status: { type: String, required: true }, liftedAt: Date,
  }, { ...opts, collection: 'suppressions' });
  suppressionSchema.index({ status: 1, _id: 1 });
  suppressionSchema.index({ subjectId: 1 });

  const backupSchema = new Schema({
    _id: String, service: { type: String, required: true }, takenAt: { type: Date, required: true }, expiresAt: { type: Date, required: true },
    location: { type: String, required: true }, reference: String, status: { type: String, required: true }, recordedAt: { type: Date, required: true }, recordedBy: actor,
  }, { ...opts, collection: 'backup_generations' });
  backupSchema.index({ status: 1, expiresAt: 1 });
  backupSchema.index({ service: 1, takenAt: -1 });

  const restoreSchema = new Schema({
    _id: String, generationId: { type: String, required: true }, service: { type: String, required: true }, status: { type: String, required: true },
    planned: { type: Number, default: 0 }, planningDone: { type: Boolean, default: false }, cursor: { type: String, default: null },
    openRequests: Number, openRequestsCountedAt: Date, requestedAt: { type: Date, required: true }, requestedBy: actor, cleanAt: Date,
  }, { ...opts, collection: 'restores' });
  restoreSchema.index({ status: 1 });

  const sweepSchema = new Schema({
    _id: String, kind: { type: String, required: true }, shutdownId: String, functionId: String, asOf: { type: Date, required: true },
    rules: { type: [Mixed], default: [] }, heldSubjects: { type: [Mixed], default: undefined }, batchSize: { type: Number, required: true }, status: { type: String, required: true },
    participants: { type: Mixed, default: {} }, attempt: { type: Number, required: true }, expiredSubjects: { type: Number, default: 0 },
    startedAt: { type: Date, required: true }, startedBy: actor, completedAt: Date, nextActionAt: { type: Date, default: null }, rev: { type: Number, required: true },
  }, { ...opts, collection: 'sweeps' }).plugin(outboxPlugin);
  sweepSchema.index({ status: 1, nextActionAt: 1 });
  sweepSchema.index({ startedAt: -1 });

  const announcementSchema = new Schema({ _id: String, at: Date }, { ...opts, collection: 'announcements' }).plugin(outboxPlugin);
  const scheduleSchema = new Schema({ _id: String, nextRunAt: { type: Date, required: true }, lastRunAt: Date, lastSweepId: String }, { ...opts, collection: 'schedules' });

  const shutdownSchema = new Schema({
    _id: String, functionId: { type: String, required: true }, title: { type: String, required: true }, effectiveAt: { type: Date, required: true },
    action: { type: String, required: true }, categories: { type: [String], default: [] }, erasedCategories: { type: [String], default: [] },
    keptCategories: { type: [Mixed], default: [] }, notice: { type: Mixed, required: true },
    affectedSubjects: { type: [String], default: [] }, erasuresOpened: { type: Number, default: 0 }, openRequests: Number, openRequestsCountedAt: Date, status: { type: String, required: true }, sweepId: { type: String, required: true },
    createdAt: { type: Date, required: true }, createdBy: actor, completedAt: Date,
  }, { ...opts, collection: 'shutdowns' }).plugin(outboxPlugin);
  shutdownSchema.index({ functionId: 1 }, { unique: true });
  shutdownSchema.index({ status: 1 });

  const residencySchema = new Schema({
    _id: String, service: { type: String, required: true }, homeRegion: { type: String, required: true }, stores: { type: [Mixed], default: [] },
    exception: Mixed, flagged: { type: Boolean, required: true }, firstSeenAt: { type: Date, required: true }, lastSeenAt: { type: Date, required: true },
    instances: { type: Number, default: 0 },
  }, { ...opts, collection: 'residency_declarations' });
  residencySchema.index({ service: 1, lastSeenAt: -1 });

  const openRequestSchema = new Schema({ _id: String, requestId: { type: String, required: true } }, { ...opts, collection: 'erasure_open_requests' });

  const store: Store = {
    requests: app.outbox.register(m<ErasureRequestDoc>('ErasureRequest', requestSchema)),
    openRequests: m<OpenRequestDoc>('OpenErasureRequest', openRequestSchema),
    policies: m<RetentionPolicyDoc>('RetentionPolicy', policySchema),
    policyVersions: m<RetentionPolicyVersionDoc>('RetentionPolicyVersion', versionSchema),
    audit: m<AuditRecordDoc>('AuditRecord', auditSchema),
    holds: app.outbox.register(m<LegalHoldDoc>('LegalHold', holdSchema)),
    kept: m<KeptRecordDoc>('KeptRecord', keptSchema),
    suppressions: m<SuppressionDoc>('Suppression', suppressionSchema),
    backups: m<BackupGenerationDoc>('BackupGeneration', backupSchema),
    restores: m<RestoreDoc>('Restore', restoreSchema),
    sweeps: app.outbox.register(m<SweepDoc>('Sweep', sweepSchema)),
    schedules: m<ScheduleDoc>('Schedule', scheduleSchema),
    announcements: app.outbox.register(m<AnnouncementDoc>('Announcement', announcementSchema)),
    shutdowns: app.outbox.register(m<ShutdownDoc>('Shutdown', shutdownSchema)),
    residency: m<ResidencyRecordDoc>('ResidencyRecord', residencySchema),
    replies: app.outbox.register(m<ErasureReplyRecord>('ErasureReply', erasureReplySchema())),
    sweepReplies: app.outbox.register(m<SweepReplyRecord>('SweepReply', sweepReplySchema())),
  };
  app.decorate('store', store);
}, { name: 'retention-models', dependencies: ['pipp-mongo'] });
