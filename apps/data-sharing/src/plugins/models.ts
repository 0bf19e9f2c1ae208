import type { BasisRecord, DataCategory } from '@pipp/contracts';
import { outboxPlugin } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Schema, type Model } from 'mongoose';

/**
 * The data-sharing service's collections (database `pipp_data_sharing`). Every record about a data
 * subject carries `subjectId` (an opaque id, not PI) so the erasure saga finds it; records kept by law
 * after an erasure carry `held` (basis, evidence, purge date) and are excluded from every normal read.
 */

/** Who did something: the token's role and `sub`. */
export interface Actor { role: string; actorId: string }
const ActorSchema = new Schema<Actor>({ role: String, actorId: String }, { _id: false });

/** A record kept by law after an erasure: isolated from further processing until `purgeAt`. */
export interface Held { legalBasis: string; evidenceRef: string; purgeAt: Date; since: Date }
const HeldSchema = new Schema<Held>({ legalBasis: String, evidenceRef: String, purgeAt: Date, since: Date }, { _id: false });

/** A third party that receives PI (policy 3.1, 1.2, 5.3). */
export interface RecipientDoc {
  _id: string;
  legalName: string;
  country: string;
  contact: { department?: string; email?: string; phone?: string; address?: string };
  purposes: string[];
  categories: DataCategory[];
  /** 1.2: the recipient's processing is governed by its own policy, not ours. */
  ownPolicy: { applies: boolean; url?: string };
  attestation: { protectsNoLessThanPolicy: boolean; documentRef: string; attestedBy: string; attestedAt: Date; recordedBy: Actor };
  webhook: { url: string; secrets: { id: string; sealed: string; createdAt: Date }[] };
  status: 'active' | 'suspended';
  createdBy: Actor;
  createdAt: Date;
  updatedAt: Date;
  rev: number;
}

/** One allowed sharing or cross-border transfer of a subject's PI (policy 3.1, 3.4, 5.3). */
export interface ShareDoc {
  _id: string;
  subjectId: string;
  recipientId: string;
  recipientName: string;
  country: string;
  purpose: string;
  categories: DataCategory[];
  basis: BasisRecord;
  clause: string;
  crossBorder: boolean;
  transfer?: { ground: '5.3.1' | '5.3.2' | '5.3.3'; lawCitation?: string; contractRef?: string; basis: BasisRecord; clause: string } | undefined;
  functionId?: string;
  releaseId?: string;
  requestedBy: Actor;
  policyVersion?: number;
  /** With an idempotency key: the hash of the request it answered (a reuse for another request is refused). */
  requestHash?: string;
  sharedAt: Date;
  held?: Held | null;
}

/** A public disclosure of a subject's PI (policy 3.3). */
export interface DisclosureDoc {
  _id: string;
  subjectId: string;
  categories: DataCategory[];
  ground: '3.3.1' | '3.3.2';
  via?: 'express-consent' | 'active-choice';
  violationRef?: string;
  violation?: string;
  measuresTaken?: string[];
  basis: BasisRecord | null;
  clause: string;
  channel: string;
  functionId?: string;
  decidedBy: Actor;
  disclosedAt: Date;
  held?: Held | null;
}

/** PI received from a third party (policy 2.4.2(3)); item data sealed. */
export interface IndirectDoc {
  _id: string;
  subjectId: string;
  source: { name: string; recipientId?: string };
  purpose: string;
  functionId?: string;
  confirmation: { documentRef: string; subjectConsented: boolean; lawfulSource: boolean; liabilityAccepted: boolean; signatory?: string; signedAt: Date };
  items: { category: DataCategory; status: 'usable' | 'awaiting-confirmation' | 'declined'; sealed: string | null; decidedAt?: Date }[];
  basis: BasisRecord;
  receivedBy: Actor;
  receivedAt: Date;
  rev: number;
  held?: Held | null;
}

/** Information about other people supplied by a subject, with their attestation (policy 2.4.2(1)). */
export interface OtherPeopleDoc {
  _id: string;
  subjectId: string;
  relationship: string;
  categories: DataCategory[];
  sealed: string;
  functionId?: string;
  attestation: { kind: string; sealedStatement: string; attestedAt: Date };
  suppliedBy: Actor;
  createdAt: Date;
}

/** A dataset released to a recipient, anonymized or as PI (policy 3.4 last paragraph). No rows kept. */
export interface ReleaseDoc {
  _id: string;
  recipientId: string;
  purpose: string;
  name: string;
  digest: string;
  rows: number;
  outcome: 'anonymized' | 'personal';
  report: Record<string, unknown>;
  subjects: number;
  basis: BasisRecord | null;
  createdBy: Actor;
  createdAt: Date;
}

/** The subject's own authorization held by a recipient: it is not asked to delete (policy 4.2). */
export interface IndependentAuthorizationDoc {
  _id: string;
  subjectId: string;
  recipientId: string;
  evidenceRef: string;
  recordedBy: Actor;
  recordedAt: Date;
}

/** This service's part of one erasure request, its plan, and what it replied (policy 4.1, 4.2). */
export interface ErasureDoc {
  _id: string;
  subjectId: string;
  scope: unknown;
  ground: string;
  status: 'planned' | 'applied';
  plan: Record<string, unknown>;
  counts: { erased: number; anonymized: number; kept: number };
  kept: { category: DataCategory; legalBasis: string; purgeAt: string; reason: string }[];
  recipients: { recipientId: string; noticeId?: string; status: 'notified' | 'not-asked'; categories: DataCategory[]; authorizationDigest?: string }[];
  lastAttempt: number;
  lastPending: string[] | null;
  replies: number;
  rev: number;
  createdAt: Date;
  appliedAt?: Date;
}

/** A deletion notice to one recipient for one erasure request, with its deliveries (policy 4.2). */
export interface NoticeDoc {
  _id: string;
  requestId: string;
  subjectId: string;
  subjectRef: string;
  recipientId: string;
  categories: DataCategory[];
  shareIds: string[];
  ground: string;
  status: 'pending' | 'acknowledged' | 'failed';
  attempts: number;
  nextAttemptAt: Date;
  leaseUntil: Date;
  history: { at: Date; outcome: string; httpStatus?: number; durationMs: number }[];
  acknowledgedAt?: Date;
  acknowledgedVia?: 'webhook-2xx' | 'signed-call' | 'operator';
  acknowledgedBy?: Actor;
  createdAt: Date;
}

/**
 * A data subject whose account erasure began here (policy 4.1, 4.2; PIPL art. 47): nothing more is
 * recorded about them. Keyed by their pseudonym (`Sealer.erasedKey`), never the subject id in clear.
 */
export interface ErasedSubjectDoc { _id: string; requestId: string; at: Date }

/** A retention sweep this service applied (idempotent by sweep id). */
export interface SweepDoc { _id: string; status: 'completed'; counts: { erased: number; anonymized: number; kept: number }; batches: number; at: Date }

/** A shut-down function: no new data for it (policy 2.4.2(5)). */
export interface ShutdownDoc { _id: string; shutdownId: string; title: string; effectiveAt: Date }

/** Who reached a subject's records on someone else's behalf (operators, the DPO, services). */
export interface AuditDoc { _id: string; at: Date; actor: Actor; action: string; route: string; subjectId: string; status: number; reason?: string }

const str = { type: String, required: true };
const cats = { type: [String], default: [] as string[] };
const basisField = { type: Schema.Types.Mixed, default: null };

function recipientModel(app: FastifyInstance) {
  const s = new Schema({
    _id: str, legalName: str, country: str,
    contact: { department: String, email: String, phone: String, address: String },
    purposes: { type: [String], default: [] }, categories: cats,
    ownPolicy: { applies: Boolean, url: String },
    attestation: { protectsNoLessThanPolicy: Boolean, documentRef: String, attestedBy: String, attestedAt: Date, recordedBy: ActorSchema },
    webhook: { url: String, secrets: { type: [new Schema({ id: String, sealed: String, createdAt: Date }, { _id: false })], default: [] } },
    status: { type: String, required: true }, createdBy: ActorSchema, createdAt: Date, updatedAt: Date, rev: { type: Number, default: 0 },
  }, { versionKey: false });
  s.index({ status: 1, legalName: 1 });
  return app.mongo.model<RecipientDoc>('Recipient', s);
}

function shareModel(app: FastifyInstance) {
  const s = new Schema({
    _id: str, subjectId: str, recipientId: str, recipientName: String, country: String, purpose: String, categories: cats,
    basis: basisField, clause: String, crossBorder: Boolean, transfer: { type: Schema.Types.Mixed, default: undefined },
    functionId: String, releaseId: String, requestedBy: ActorSchema, policyVersion: Number, requestHash: String, sharedAt: Date, held: { type: HeldSchema, default: null },
  }, { versionKey: false });
  s.index({ subjectId: 1, sharedAt: -1 });
  s.index({ recipientId: 1, sharedAt: -1 });
  s.index({ sharedAt: 1 });
  return app.mongo.model<ShareDoc>('Share', s);
}

function disclosureModel(app: FastifyInstance) {
  const s = new Schema({
    _id: str, subjectId: str, categories: cats, ground: str, via: String, violationRef: String, violation: String, measuresTaken: { type: [String], default: undefined },
    basis: basisField, clause: String, channel: String, functionId: String, decidedBy: ActorSchema, disclosedAt: Date, held: { type: HeldSchema, default: null },
  }, { versionKey: false });
  s.plugin(outboxPlugin);
  s.index({ subjectId: 1, disclosedAt: -1 });
  s.index({ disclosedAt: 1 });
  return app.outbox.register(app.mongo.model<DisclosureDoc>('Disclosure', s));
}

function indirectModel(app: FastifyInstance) {
  const s = new Schema({
    _id: str, subjectId: str, source: { name: String, recipientId: String }, purpose: String, functionId: String,
    confirmation: { documentRef: String, subjectConsented: Boolean, lawfulSource: Boolean, liabilityAccepted: Boolean, signatory: String, signedAt: Date },
    items: { type: [new Schema({ category: String, status: String, sealed: { type: String, default: null }, decidedAt: Date }, { _id: false })], default: [] },
    basis: basisField, receivedBy: ActorSchema, receivedAt: Date, rev: { type: Number, default: 0 }, held: { type: HeldSchema, default: null },
  }, { versionKey: false });
  s.plugin(outboxPlugin);
  s.index({ subjectId: 1, receivedAt: -1 });
  s.index({ receivedAt: 1 });
  return app.outbox.register(app.mongo.model<IndirectDoc>('IndirectCollection', s));
}

function otherPeopleModel(app: FastifyInstance) {
  const s = new Schema({
    _id: str, subjectId: str, relationship: String, categories: cats, sealed: String, functionId: String,
    attestation: { kind: String, sealedStatement: String, attestedAt: Date }, suppliedBy: ActorSchema, createdAt: Date,
  }, { versionKey: false });
  s.index({ subjectId: 1, createdAt: -1 });
  return app.mongo.model<OtherPeopleDoc>('OtherPeopleData', s as unknown as Schema<OtherPeopleDoc>);
}

function releaseModel(app: FastifyInstance) {
  const s = new Schema({
    _id: str, recipientId: str, purpose: String, name: String, digest: String, rows: Number, outcome: String,
    report: Schema.Types.Mixed, subjects: Number, basis: basisField, createdBy: ActorSchema, createdAt: Date,
  }, { versionKey: false });
  s.index({ recipientId: 1, createdAt: -1 });
  return app.mongo.model<ReleaseDoc>('Release', s);
}

function independentModel(app: FastifyInstance) {
  const s = new Schema({
    _id: str, subjectId: str, recipientId: str, evidenceRef: String, recordedBy: ActorSchema, recordedAt: Date,
  }, { versionKey: false });
  s.index({ subjectId: 1, recipientId: 1 }, { unique: true });
  return app.mongo.model<IndependentAuthorizationDoc>('IndependentAuthorization', s);
}

function erasureModel(app: FastifyInstance) {
  const s = new Schema({
    _id: str, subjectId: str, scope: Schema.Types.Mixed, ground: String, status: String, plan: Schema.Types.Mixed,
    counts: { erased: Number, anonymized: Number, kept: Number }, kept: { type: [Schema.Types.Mixed], default: [] },
    recipients: { type: [Schema.Types.Mixed], default: [] }, lastAttempt: Number, lastPending: { type: [String], default: null },
    replies: { type: Number, default: 0 }, rev: { type: Number, default: 0 }, createdAt: Date, appliedAt: Date,
  }, { versionKey: false });
  s.plugin(outboxPlugin);
  s.index({ subjectId: 1 });
  return app.outbox.register(app.mongo.model<ErasureDoc>('Erasure', s));
}

function noticeModel(app: FastifyInstance) {
  const s = new Schema({
    _id: str, requestId: str, subjectId: str, subjectRef: String, recipientId: str, categories: cats, shareIds: { type: [String], default: [] },
    ground: String, status: str, attempts: { type: Number, default: 0 }, nextAttemptAt: Date, leaseUntil: Date,
    history: { type: [Schema.Types.Mixed], default: [] }, acknowledgedAt: Date, acknowledgedVia: String, acknowledgedBy: ActorSchema, createdAt: Date,
  }, { versionKey: false });
  s.index({ status: 1, nextAttemptAt: 1 });
  s.index({ requestId: 1 });
  s.index({ recipientId: 1, status: 1 });
  s.index({ subjectId: 1 });
  return app.mongo.model<NoticeDoc>('DeletionNotice', s);
}

function sweepModel(app: FastifyInstance) {
  const s = new Schema({ _id: str, status: String, counts: { erased: Number, anonymized: Number, kept: Number }, batches: Number, at: Date }, { versionKey: false });
  s.plugin(outboxPlugin);
  return app.outbox.register(app.mongo.model<SweepDoc>('Sweep', s));
}

function shutdownModel(app: FastifyInstance) {
  return app.mongo.model<ShutdownDoc>('Shutdown', new Schema({ _id: str, shutdownId: String, title: String, effectiveAt: Date }, { versionKey: false }) as unknown as Schema<ShutdownDoc>);
}

function erasedSubjectModel(app: FastifyInstance) {
  // Read only by `_id` (the one filter FerretDB looks up without a scan): no other index.
  const s = new Schema({ _id: str, requestId: str, at: { type: Date, required: true } }, { versionKey: false, collection: 'erased_subjects' });
  return app.mongo.model<ErasedSubjectDoc>('ErasedSubject', s as unknown as Schema<ErasedSubjectDoc>);
}

function auditModel(app: FastifyInstance) {
  const s = new Schema({ _id: str, at: Date, actor: ActorSchema, action: String, route: String, subjectId: String, status: Number, reason: String }, { versionKey: false });
  s.index({ subjectId: 1, at: -1 });
  return app.mongo.model<AuditDoc>('AuditRecord', s);
}

export interface Models {
  recipients: Model<RecipientDoc>;
  shares: Model<ShareDoc>;
  disclosures: Model<DisclosureDoc>;
  indirect: Model<IndirectDoc>;
  otherPeople: Model<OtherPeopleDoc>;
  releases: Model<ReleaseDoc>;
  independent: Model<IndependentAuthorizationDoc>;
  erasures: Model<ErasureDoc>;
  notices: Model<NoticeDoc>;
  sweeps: Model<SweepDoc>;
  shutdowns: Model<ShutdownDoc>;
  erasedSubjects: Model<ErasedSubjectDoc>;
  audit: Model<AuditDoc>;
}

declare module 'fastify' {
  interface FastifyInstance {
    models: Models;
  }
}

/** Registers the models (indexed when the app is ready) and decorates `app.models`. */
export const modelsPlugin = fp(async function models(app: FastifyInstance) {
  app.decorate('models', {
    recipients: recipientModel(app),
    shares: shareModel(app),
    disclosures: disclosureModel(app),
    indirect: indirectModel(app),
    otherPeople: otherPeopleModel(app),
    releases: releaseModel(app),
    independent: independentModel(app),
    erasures: erasureModel(app),
    notices: noticeModel(app),
    sweeps: sweepModel(app),
    shutdowns: shutdownModel(app),
    erasedSubjects: erasedSubjectModel(app),
    audit: auditModel(app),
  } satisfies Models);
}, { name: 'pipp-ds-models', dependencies: ['pipp-infrastructure'] });
