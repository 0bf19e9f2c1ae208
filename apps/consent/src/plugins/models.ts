import type {} from '@fastify/jwt';
import { outboxPlugin, upsertRaced } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { randomUUID } from 'node:crypto';
import { Schema, type Model } from 'mongoose';
import type { ProcessingFunction, Purpose } from '../domain/catalogue.js';
import type { PolicyClause } from '../domain/policy-parser.js';
import type { AppliesTo, PolicyTerms } from '../domain/policy.js';
import type { ConsentScope } from '../domain/scope.js';

/** Who recorded something: the subject themself (no id kept: it is the record's subject), staff or a service. */
export interface Actor {
  role: 'subject' | 'operator' | 'dpo' | 'service' | 'system';
  id?: string | undefined;
}

/** Where a consent was given or withdrawn (the receipt's collection method). */
export const CHANNELS = ['web', 'app', 'api', 'registration', 'continued-use', 'operator', 'paper', 'telephone'] as const;
export type ConsentChannel = (typeof CHANNELS)[number];

/**
 * One append-only ledger record (policy 2.1.2, 2.4.2(2), VI; PIPL art. 14–16): a grant or withdrawal of
 * a purpose (optionally scoped to a recipient, disclosure, sensitive category or country), or an
 * acceptance of a policy version (express, or implied by continued use after the notice period).
 * `seq` orders one subject's records (unique with subjectId, so concurrent appends serialise); `hash`
 * is a SHA-256 over the record's content (not the subject id), quoted in its receipt. Records are never
 * updated, except that erasure replaces the subject id with a pseudonym (`pseudonymized`).
 */
export interface ConsentRecordDoc {
  _id: string;
  subjectId: string;
  seq: number;
  kind: 'purpose' | 'policy';
  purpose?: string | undefined;
  scope?: ConsentScope | undefined;
  scopeKey?: string | undefined;
  document?: { documentId: string; version: number } | undefined;
  state: 'granted' | 'withdrawn';
  consentType: 'express' | 'implied';
  channel: ConsentChannel;
  policyVersion: number | null;
  categories: string[];
  noticeHash?: string | undefined;
  language?: string | undefined;
  actor: Actor;
  evidenceRef?: string | undefined;
  at: Date;
  /** When this service stored the record (server clock); other instances re-read recent ones by it. */
  recordedAt: Date;
  hash: string;
  pseudonymized?: { at: Date; requestId: string; purgeAt: Date; legalBasis: string; reason: string } | undefined;
}

/** A text shown to subjects when asking for consent, stored once by its SHA-256. */
export interface NoticeDoc { _id: string; text: string; firstSeenAt: Date }

export interface PolicyVersionDoc {
  _id: string;
  documentId: string;
  version: number;
  title: string;
  appliesTo: AppliesTo;
  text: string;
  clauses: PolicyClause[];
  summary: string;
  changes: string[];
  restrictsRights: boolean;
  affectedPurposes: string[];
  terms: PolicyTerms | null;
  effectiveAt: Date;
  noticeEndsAt: Date;
  publishedAt: Date;
  publishedBy: Actor;
}

export type PurposeDoc = Purpose & { _id: string; revision: number; updatedAt: Date; updatedBy: Actor };
export type FunctionDoc = ProcessingFunction & { _id: string; revision: number; updatedAt: Date; updatedBy: Actor };

/** The audit trail of catalogue edits: who changed what, before and after (versioned catalogue). */
export interface CatalogueChangeDoc {
  _id: string;
  at: Date;
  actor: Actor;
  kind: 'purpose' | 'function';
  itemId: string;
  revision: number;
  before: unknown;
  after: unknown;
}

/**
 * Change counters that other instances poll to reload small, rarely changing state, and (`ledger`, a
 * random mark replaced on each append) to learn that the ledger has new records, so that they read
 * its recent records only then.
 */
export interface RevisionDoc { _id: 'catalogue' | 'policies' | 'shutdowns' | 'ledger'; rev: number | string }

/**
 * Moves a change mark in `revisions` after a change is stored; every instance's refresh (statePlugin)
 * reloads what a moved mark names. A new random value rather than `$inc`: FerretDB 1.24 can lose one
 * of two concurrent increments from different processes, and a reader that saw the first would then
 * never reload for the second. Old numeric marks stay valid (any different value is a move).
 */
export async function markChanged(models: Pick<ConsentModels, 'revisions'>, id: RevisionDoc['_id']): Promise<void> {
  await upsertRaced(() => models.revisions.updateOne({ _id: id }, { $set: { rev: randomUUID() } }, { upsert: true }));
}

export interface ShutdownDoc { _id: string; functionId: string; title: string; effectiveAt: Date; receivedAt: Date }

export interface EffectCountsDoc { erased: number; anonymized: number; kept: number }
export interface KeptDoc { category: string; legalBasis: string; purgeAt: string; reason: string }

/** This service's part of one erasure request (idempotent across redeliveries). Holds no subject id. */
export interface ErasureDoc {
  _id: string;
  pseudonym: string;
  status: 'in-progress' | 'completed';
  counts: EffectCountsDoc;
  kept: KeptDoc[];
  startedAt: Date;
  completedAt?: Date | undefined;
  replies: number;
}

/**
 * A data subject whose account erasure began here, by pseudonym (no subject id): nothing more is
 * recorded about them (policy 4.1, 4.2; an id is never reused, so the mark is kept).
 */
export interface ErasedSubjectDoc { _id: string; requestId: string; at: Date }

export interface SweepDoc {
  _id: string;
  status: 'in-progress' | 'completed';
  counts: EffectCountsDoc;
  batches: number;
  startedAt: Date;
  completedAt?: Date | undefined;
}

/** Processing without consent that a decision allowed (2.4.2(4), 3.4): aggregated per basis and evidence. */
export interface LegalBasisUseDoc {
  _id: string;
  subjectId: string;
  service: string;
  purpose: string;
  legalBasis: string;
  evidenceRef: string;
  recipientId?: string | undefined;
  country?: string | undefined;
  firstAt: Date;
  lastAt: Date;
  count: number;
}

/** Staff access to a subject's consent data and staff changes (who, what, when). Ids only, no PI. */
export interface AuditDoc {
  _id: string;
  at: Date;
  actor: Actor;
  action: string;
  subjectId?: string | undefined;
  target?: string | undefined;
  requestId: string;
}

export interface ConsentModels {
  records: Model<ConsentRecordDoc>;
  notices: Model<NoticeDoc>;
  policyVersions: Model<PolicyVersionDoc>;
  purposes: Model<PurposeDoc>;
  functions: Model<FunctionDoc>;
  catalogueChanges: Model<CatalogueChangeDoc>;
  revisions: Model<RevisionDoc>;
  shutdowns: Model<ShutdownDoc>;
  erasures: Model<ErasureDoc>;
  erasedSubjects: Model<ErasedSubjectDoc>;
  sweeps: Model<SweepDoc>;
  legalBasisUses: Model<LegalBasisUseDoc>;
  audit: Model<AuditDoc>;
}

declare module 'fastify' {
  interface FastifyInstance {
    models: ConsentModels;
  }
}

const Mixed = Schema.Types.Mixed;
const actor = { role: { type: String, required: true }, id: String };
const opts = { versionKey: false, minimize: false } as const;

/** Registers the consent service's models on its own database (indexes created at ready). */
export const modelsPlugin = fp(async function models(app: FastifyInstance) {
  const records = new Schema<ConsentRecordDoc>({
    _id: { type: String, required: true },
    subjectId: { type: String, required: true },
    seq: { type: Number, required: true },
    kind: { type: String, required: true },
    purpose: String,
    scope: { type: Mixed },
    scopeKey: String,
    document: { type: Mixed },
    state: { type: String, required: true },
    consentType: { type: String, required: true },
    channel: { type: String, required: true },
    policyVersion: { type: Number, default: null },
    categories: { type: [String], default: [] },
    noticeHash: String,
    language: String,
    actor,
    evidenceRef: String,
    at: { type: Date, required: true },
    recordedAt: { type: Date, required: true },
    hash: { type: String, required: true },
    pseudonymized: { type: Mixed },
  }, { ...opts, collection: 'consent_records' });
  records.index({ subjectId: 1, seq: 1 }, { unique: true });
  records.index({ recordedAt: 1 });
  records.index({ subjectId: 1, scopeKey: 1 });
  records.plugin(outboxPlugin);

  const policyVersions = new Schema<PolicyVersionDoc>({
    _id: { type: String, required: true },
    documentId: { type: String, required: true },
    version: { type: Number, required: true },
    title: { type: String, required: true },
    appliesTo: { type: Mixed, required: true },
    text: { type: String, required: true },
    clauses: { type: [Mixed], default: [] } as never,
    summary: { type: String, default: '' },
    changes: { type: [String], default: [] },
    restrictsRights: { type: Boolean, required: true },
    affectedPurposes: { type: [String], default: [] },
    terms: { type: Mixed, default: null },
    effectiveAt: { type: Date, required: true },
    noticeEndsAt: { type: Date, required: true },
    publishedAt: { type: Date, required: true },
    publishedBy: actor,
  }, { ...opts, collection: 'policy_versions' });
  policyVersions.index({ documentId: 1, version: 1 }, { unique: true });
  policyVersions.plugin(outboxPlugin);

  const catalogueItem = {
    _id: { type: String, required: true },
    id: { type: String, required: true },
    title: { type: String, required: true },
    kind: { type: String, required: true },
    categories: { type: [String], default: [] },
    why: { type: String, required: true },
    status: { type: String, required: true },
    revision: { type: Number, required: true },
    updatedAt: { type: Date, required: true },
    updatedBy: actor,
  };
  const purposes = new Schema<PurposeDoc>({
    ...catalogueItem,
    description: { type: String, default: '' },
    policyClause: { type: String, default: null },
    legalBases: { type: [String], default: [] },
    standingBasis: { type: Mixed, default: null },
    requires: { type: String, default: null },
    grantedAtRegistration: { type: Boolean, default: false },
  }, { ...opts, collection: 'purposes' });
  const functions = new Schema<FunctionDoc>({
    ...catalogueItem,
    purposes: { type: [String], default: [] },
  }, { ...opts, collection: 'functions' });

  const catalogueChanges = new Schema<CatalogueChangeDoc>({
    _id: { type: String, required: true },
    at: { type: Date, required: true },
    actor,
    kind: { type: String, required: true },
    itemId: { type: String, required: true },
    revision: { type: Number, required: true },
    before: { type: Mixed, default: null },
    after: { type: Mixed, default: null },
  }, { ...opts, collection: 'catalogue_changes' });
  catalogueChanges.index({ at: 1 });

  const erasures = new Schema<ErasureDoc>({
    _id: { type: String, required: true },
    pseudonym: { type: String, required: true },
    status: { type: String, required: true },
    counts: { type: Mixed, required: true },
    kept: { type: [Mixed], default: [] } as never,
    startedAt: { type: Date, required: true },
    completedAt: Date,
    replies: { type: Number, default: 0 },
  }, { ...opts, collection: 'erasures' });
  erasures.plugin(outboxPlugin);

  const sweeps = new Schema<SweepDoc>({
    _id: { type: String, required: true },
    status: { type: String, required: true },
    counts: { type: Mixed, required: true },
    batches: { type: Number, default: 0 },
    startedAt: { type: Date, required: true },
    completedAt: Date,
  }, { ...opts, collection: 'sweeps' });
  sweeps.plugin(outboxPlugin);

  const legalBasisUses = new Schema<LegalBasisUseDoc>({
    _id: { type: String, required: true },
    subjectId: { type: String, required: true },
    service: { type: String, required: true },
    purpose: { type: String, required: true },
    legalBasis: { type: String, required: true },
    evidenceRef: { type: String, required: true },
    recipientId: String,
    country: String,
    firstAt: { type: Date, required: true },
    lastAt: { type: Date, required: true },
    count: { type: Number, required: true },
  }, { ...opts, collection: 'legal_basis_uses' });
  legalBasisUses.index({ subjectId: 1 });
  legalBasisUses.index({ lastAt: 1 });

  const audit = new Schema<AuditDoc>({
    _id: { type: String, required: true },
    at: { type: Date, required: true },
    actor,
    action: { type: String, required: true },
    subjectId: String,
    target: String,
    requestId: { type: String, required: true },
  }, { ...opts, collection: 'audit_records' });
  audit.index({ subjectId: 1, at: 1 });

  const m = app.mongo;
  const handles: ConsentModels = {
    records: app.outbox.register(m.model<ConsentRecordDoc>('ConsentRecord', records)),
    notices: m.model<NoticeDoc>('Notice', new Schema<NoticeDoc>({
      _id: { type: String, required: true }, text: { type: String, required: true }, firstSeenAt: { type: Date, required: true },
    }, { ...opts, collection: 'notices' })),
    policyVersions: app.outbox.register(m.model<PolicyVersionDoc>('PolicyVersion', policyVersions)),
    purposes: m.model<PurposeDoc>('Purpose', purposes),
    functions: m.model<FunctionDoc>('Function', functions),
    catalogueChanges: m.model<CatalogueChangeDoc>('CatalogueChange', catalogueChanges),
    revisions: m.model<RevisionDoc>('Revision', new Schema<RevisionDoc>({
      // A count (catalogue, policies, shutdowns) or a random mark (ledger).
      _id: { type: String, required: true }, rev: { type: Schema.Types.Mixed, required: true },
    }, { ...opts, collection: 'revisions' })),
    shutdowns: m.model<ShutdownDoc>('Shutdown', new Schema<ShutdownDoc>({
      _id: { type: String, required: true }, functionId: { type: String, required: true }, title: { type: String, required: true },
      effectiveAt: { type: Date, required: true }, receivedAt: { type: Date, required: true },
    }, { ...opts, collection: 'function_shutdowns' })),
    erasures: app.outbox.register(m.model<ErasureDoc>('Erasure', erasures)),
    erasedSubjects: m.model<ErasedSubjectDoc>('ErasedSubject', new Schema<ErasedSubjectDoc>({
      _id: { type: String, required: true }, requestId: { type: String, required: true }, at: { type: Date, required: true },
    }, { ...opts, collection: 'erased_subjects' })),
    sweeps: app.outbox.register(m.model<SweepDoc>('Sweep', sweeps)),
    legalBasisUses: m.model<LegalBasisUseDoc>('LegalBasisUse', legalBasisUses),
    audit: m.model<AuditDoc>('Audit', audit),
  };
  app.decorate('models', handles);
}, { name: 'consent-models', dependencies: ['pipp-infrastructure'] });
