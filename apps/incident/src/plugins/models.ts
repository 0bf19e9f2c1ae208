import type { Channel, DataCategory } from '@pipp/contracts';
import { outboxPlugin } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Schema, type Model } from 'mongoose';
import type { AnnouncementReason, DeliveryMode } from '../domain/delivery.js';
import type { IncidentStatus, Severity } from '../domain/incidents.js';
import type { NotificationKind } from '../domain/notice.js';
import type { ReportKind, ReportStatus } from '../domain/reports.js';

/** One entry of an incident's timeline (policy 5.4.2: the record of what happened and what was done). */
export interface TimelineEntry {
  at: Date;
  by: string;
  role: string;
  kind: 'created' | 'updated' | 'status' | 'note' | 'notified' | 'announced' | 'regulator-report' | 'affected-subjects';
  text?: string;
  fields?: string[];
}

/** A report of the incident to the regulator (PIPL art. 57: notify the authority). */
export interface RegulatorReport {
  id: string;
  regulator: string;
  reportedAt: Date;
  method: string;
  reference?: string;
  summary: string;
  recordedBy: string;
  recordedAt: Date;
}

/** A security incident (policy 5.4.2). Collection `incidents`. */
export interface Incident {
  _id: string;
  title: string;
  basicSituation: string;
  cause?: string;
  categories: string[];
  affected: 'listed' | 'all-subjects';
  affectedCount: number;
  possibleImpact: string;
  measuresTaken: string[];
  measuresPlanned: string[];
  advice: string;
  remedies: string;
  severity: Severity;
  status: IncidentStatus;
  occurredAt?: Date;
  discoveredAt: Date;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
  timeline: TimelineEntry[];
  regulatorReports: RegulatorReport[];
  notificationIds: string[];
  announcementIds: string[];
}

/**
 * Subjects affected by an incident, stored in chunks of up to 10 000 ids (`affected_chunks`), so a
 * fan-out reads a 100 000-subject list in a few documents (FerretDB scans on every query). After an
 * erasure the subject's id leaves `subjectIds` and only a pseudonym stays in `pseudonyms` (PIPL art. 57),
 * until `keptUntil`.
 */
export interface AffectedChunk { _id: string; incidentId: string; seq: number; subjectIds: string[]; pseudonyms: string[]; keptUntil?: Date }

/**
 * Deliveries still to be attempted (`delivery_queue`): only pending work lives here, so the
 * dispatcher's polling stays cheap however many deliveries exist. `leaseUntil`/`leaseOwner` let
 * several instances share the work; an expired lease (crashed instance) is claimed again.
 */
export interface QueueEntry { _id: string; notificationId: string; subjectId: string; dueAt: Date; leaseUntil: Date; /** Attempt round; a claim is per round. */ round?: number }

/**
 * A claim on one round of a queue entry (`delivery_claims`). Claims are inserts with a unique id, the
 * one write FerretDB 1.24 makes exclusive between instances (a conditional update is not: two
 * instances both "win" it). A claim older than the lease may be removed and taken again.
 */
export interface DeliveryClaim { _id: string; queueId: string; at: Date }

/** A subject's notification channels, from identity's contact-changed events (`contacts`). */
export interface Contact {
  _id: string;
  channels: Partial<Record<Channel, string>>;
  preferred: Channel[];
  sourceAt: Date;
  updatedAt: Date;
}

/**
 * Contact channels a legal hold keeps after an erasure (`isolated_contacts`, one per subject and
 * category): out of the contact directory, so no notice reaches them, until `purgeAt` (policy 4.1,
 * PIPL art. 47: kept, but no longer processed).
 */
export interface IsolatedContact {
  _id: string;
  subjectId: string;
  category: DataCategory;
  channels: Partial<Record<Channel, string>>;
  legalBasis: string;
  purgeAt: Date;
  reason: string;
  requestId: string;
  isolatedAt: Date;
}

/**
 * The latest consent to purpose `notifications` per subject (`notice_optouts`, by subject id; from
 * consent's `privacy.consent.changed`): general notices skip those who withdrew it (policy 2.1.1: refusing what a basic
 * function needs blocks that function); notices the law requires still reach them.
 */
export interface NoticeOptOut { _id: string; at: Date; recordId: string; withdrawn: boolean }

/** Subjects whose data was erased (`erased_subjects`, keyed by pseudonym): late contact events for them are ignored. */
export interface ErasedSubject { _id: string; at: Date; requestId: string }

/** A notice to an audience and its progress (`notifications`). */
export interface Notification {
  _id: string;
  kind: NotificationKind;
  title: string;
  body?: string;
  elements: Record<string, string>;
  contact: string;
  clause: string;
  channels?: Channel[];
  mode?: DeliveryMode;
  requestedBy: { service: string; actor?: string; role?: string };
  incidentId?: string;
  audience: { kind: 'subjects'; subjectIds: string[] } | { kind: 'incident'; incidentId: string } | { kind: 'all-subjects' };
  audienceSize: number;
  reach: { oneByOne: boolean; announce: boolean; reason?: AnnouncementReason };
  status: 'planning' | 'delivering' | 'completed' | 'refused';
  refusedReason?: string;
  /** Written by the planner only (FerretDB 1.24 loses concurrent updates of one document). */
  plan: { cursor: string; batches: number; subjects: number; done: boolean };
  announcementIds: string[];
  createdAt: Date;
  completedAt?: Date;
}

/** One page of a notification's audience, published as a batch event (`fanout_batches`). */
/** One page of a notification's audience (`fanout_batches`), carrying its batch event in its outbox. */
export interface FanoutBatch { _id: string; notificationId: string; batch: number; count: number; at: Date; /** Where the next page starts, and subjects planned so far (resume after a crash). */ cursor: string; planned: number }

/**
 * A batch whose deliveries exist (`fanout_done`). Insert-only and separate from `fanout_batches`,
 * whose outbox the relay updates concurrently (FerretDB 1.24 loses concurrent updates of one document).
 */
export interface BatchDone { _id: string; notificationId: string; at: Date }

/** One attempt on one channel. */
export interface DeliveryAttempt { channel: Channel; at: Date; ok: boolean; error?: string; permanent?: boolean; ref?: string }

/** Delivery of one notice to one subject, across channels (`deliveries`). */
export interface Delivery {
  _id: string;
  notificationId: string;
  subjectId: string;
  kind: NotificationKind;
  plan: Channel[];
  channelIndex: number;
  attemptsOnChannel: number;
  /** Retries on the same channel, and fallbacks to another one (summed for progress). */
  retries: number;
  fallbacks: number;
  /** `declined`: a general notice to a subject who withdrew consent to notifications (nothing sent). */
  status: 'queued' | 'retrying' | 'delivered' | 'failed' | 'unreachable' | 'declined';
  nextAttemptAt: Date;
  attempts: DeliveryAttempt[];
  mode?: DeliveryMode;
  /** The first channel that accepted the notice, and every channel that did (every-channel mode). */
  deliveredChannel?: Channel;
  deliveredChannels?: Channel[];
  deliveredAt?: Date;
  createdAt: Date;
  updatedAt: Date;
  pseudonymous?: boolean;
  keptUntil?: Date;
}

/** A public announcement (`announcements`; policy 5.4.2, 2.4.2(5), VI). Holds no personal data. */
export interface Announcement {
  _id: string;
  kind: NotificationKind;
  title: string;
  body?: string;
  elements: Record<string, string>;
  contact: string;
  reason: AnnouncementReason;
  incidentId?: string;
  notificationId?: string;
  audienceSize?: number;
  publishedAt: Date;
  publishedBy: string;
}

/** A reply on a user report. */
export interface ReportReply { id: string; at: Date; by: 'subject' | 'support'; actor: string; text: string }

/** A user report (`reports`; policy 5.4.1, 2.2, preamble). */
export interface Report {
  _id: string;
  subjectId: string | null;
  kind: ReportKind;
  status: ReportStatus;
  title: string;
  text: string;
  replies: ReportReply[];
  resolution?: string;
  openedBy: 'subject' | 'support' | 'identity';
  sourceReportId?: string;
  createdAt: Date;
  updatedAt: Date;
  anonymized?: boolean;
  isolated?: { legalBasis: string; purgeAt: Date };
}

/** A letter waiting in the postal queue (`letters`; policy 5.4.2 "letter"). */
export interface Letter { _id: string; notificationId: string; subjectId: string; address: string; content: string; status: 'queued' | 'printed' | 'withdrawn'; queuedAt: Date }

/** Local stand-in for the SMS and telephone providers when no provider URL is configured (`provider_sink`). */
export interface SinkMessage { _id: string; channel: Channel; subjectId: string; to: string; text: string; at: Date }

/** Audit record of a change or of staff access to someone's data (`audit_records`). */
export interface AuditRecord {
  _id: string;
  at: Date;
  actor: string;
  role: string;
  action: string;
  target: { type: string; id: string };
  subjectId?: string;
  fields?: string[];
}

/** The answer given to an erasure request (`erasure_receipts`), replayed on redelivery. */
export interface ErasureReceipt {
  _id: string;
  subjectId: string;
  counts: { erased: number; anonymized: number; kept: number };
  kept: { category: string; legalBasis: string; purgeAt: string; reason: string }[];
  repliedAttempts: number[];
  at: Date;
}

/** The answer given to a retention sweep (`sweep_receipts`). */
export interface SweepReceipt { _id: string; counts: { erased: number; anonymized: number; kept: number }; batches: number; at: Date }

export interface Models {
  incidents: Model<Incident>;
  affected: Model<AffectedChunk>;
  queue: Model<QueueEntry>;
  claims: Model<DeliveryClaim>;
  contacts: Model<Contact>;
  isolatedContacts: Model<IsolatedContact>;
  optOuts: Model<NoticeOptOut>;
  erased: Model<ErasedSubject>;
  notifications: Model<Notification>;
  batches: Model<FanoutBatch>;
  batchesDone: Model<BatchDone>;
  deliveries: Model<Delivery>;
  announcements: Model<Announcement>;
  reports: Model<Report>;
  letters: Model<Letter>;
  sink: Model<SinkMessage>;
  audit: Model<AuditRecord>;
  erasures: Model<ErasureReceipt>;
  sweeps: Model<SweepReceipt>;
}

declare module 'fastify' {
  interface FastifyInstance {
    models: Models;
  }
}

const opts = (collection: string) => ({ versionKey: false, minimize: false, collection } as const);
const Mixed = Schema.Types.Mixed;

/** The incident service's collections, registered on its own database (indexes built at ready). */
export const modelsPlugin = fp(async function models(app: FastifyInstance) {
  const incidentSchema = new Schema<Incident>({
    _id: String, title: String, basicSituation: String, cause: String, categories: [String], affected: String, affectedCount: Number,
    possibleImpact: String, measuresTaken: [String], measuresPlanned: [String], advice: String, remedies: String,
    severity: String, status: String, occurredAt: Date, discoveredAt: Date, createdBy: String, createdAt: Date, updatedAt: Date,
    timeline: [Mixed], regulatorReports: [Mixed], notificationIds: [String], announcementIds: [String],
  }, opts('incidents'));
  incidentSchema.index({ status: 1, createdAt: -1 });

  const affectedSchema = new Schema<AffectedChunk>({ _id: String, incidentId: String, seq: Number, subjectIds: [String], pseudonyms: [String], keptUntil: Date }, opts('affected_chunks'));
  affectedSchema.index({ incidentId: 1, seq: 1 });
  affectedSchema.index({ subjectIds: 1 });
  const queueSchema = new Schema<QueueEntry>({ _id: String, notificationId: String, subjectId: String, dueAt: Date, leaseUntil: Date, round: Number }, opts('delivery_queue'));
  const claimSchema = new Schema<DeliveryClaim>({ _id: String, queueId: String, at: Date }, opts('delivery_claims'));
  claimSchema.index({ queueId: 1 });
  queueSchema.index({ dueAt: 1 });
  queueSchema.index({ notificationId: 1 });
  queueSchema.index({ subjectId: 1 });

  const contactSchema = new Schema<Contact>({ _id: String, channels: Mixed, preferred: [String], sourceAt: Date, updatedAt: Date }, opts('contacts'));
  const isolatedContactSchema = new Schema<IsolatedContact>({
    _id: String, subjectId: String, category: String, channels: Mixed, legalBasis: String, purgeAt: Date, reason: String, requestId: String, isolatedAt: Date,
  }, opts('isolated_contacts'));
  isolatedContactSchema.index({ subjectId: 1 });
  isolatedContactSchema.index({ purgeAt: 1 });
  const optOutSchema = new Schema<NoticeOptOut>({ _id: String, at: Date, recordId: String, withdrawn: Boolean }, opts('notice_optouts'));
  const erasedSchema = new Schema<ErasedSubject>({ _id: String, at: Date, requestId: String }, opts('erased_subjects'));

  const notificationSchema = new Schema<Notification>({
    _id: String, kind: String, title: String, body: String, elements: Mixed, contact: String, clause: String, channels: { type: [String], default: undefined }, mode: String,
    requestedBy: Mixed, incidentId: String, audience: Mixed, audienceSize: Number, reach: Mixed, status: String, refusedReason: String,
    plan: Mixed, announcementIds: [String], createdAt: Date, completedAt: Date,
  }, opts('notifications')).plugin(outboxPlugin);
  notificationSchema.index({ createdAt: -1 });
  notificationSchema.index({ incidentId: 1 });

  const batchSchema = new Schema<FanoutBatch>({ _id: String, notificationId: String, batch: Number, count: Number, at: Date, cursor: String, planned: Number }, opts('fanout_batches')).plugin(outboxPlugin);
  batchSchema.index({ notificationId: 1, batch: 1 });
  const doneSchema = new Schema<BatchDone>({ _id: String, notificationId: String, at: Date }, opts('fanout_done'));
  doneSchema.index({ notificationId: 1 });

  const deliverySchema = new Schema<Delivery>({
    _id: String, notificationId: String, subjectId: String, kind: String, plan: [String], channelIndex: Number, attemptsOnChannel: Number, retries: Number, fallbacks: Number,
    status: String, nextAttemptAt: Date, attempts: [Mixed], mode: String, deliveredChannel: String, deliveredChannels: { type: [String], default: undefined }, deliveredAt: Date,
    createdAt: Date, updatedAt: Date, pseudonymous: Boolean, keptUntil: Date,
  }, opts('deliveries'));
  deliverySchema.index({ notificationId: 1, status: 1 });
  deliverySchema.index({ subjectId: 1 });

  const announcementSchema = new Schema<Announcement>({
    _id: String, kind: String, title: String, body: String, elements: Mixed, contact: String, reason: String, incidentId: String,
    notificationId: String, audienceSize: Number, publishedAt: Date, publishedBy: String,
  }, opts('announcements')).plugin(outboxPlugin);
  announcementSchema.index({ publishedAt: -1 });

  const reportSchema = new Schema<Report>({
    _id: String, subjectId: { type: String, default: null }, kind: String, status: String, title: String, text: String, replies: [Mixed],
    resolution: String, openedBy: String, sourceReportId: String, createdAt: Date, updatedAt: Date, anonymized: Boolean, isolated: Mixed,
  }, opts('reports'));
  reportSchema.index({ subjectId: 1, createdAt: -1 });
  reportSchema.index({ status: 1, createdAt: -1 });

  const letterSchema = new Schema<Letter>({ _id: String, notificationId: String, subjectId: String, address: String, content: String, status: String, queuedAt: Date }, opts('letters'));
  letterSchema.index({ subjectId: 1 });
  letterSchema.index({ status: 1, queuedAt: 1 });
  const sinkSchema = new Schema<SinkMessage>({ _id: String, channel: String, subjectId: String, to: String, text: String, at: Date }, opts('provider_sink'));
  sinkSchema.index({ subjectId: 1 });
  const auditSchema = new Schema<AuditRecord>({ _id: String, at: Date, actor: String, role: String, action: String, target: Mixed, subjectId: String, fields: [String] }, opts('audit_records'));
  auditSchema.index({ 'target.type': 1, 'target.id': 1, at: 1 });
  const erasureSchema = new Schema<ErasureReceipt>({ _id: String, subjectId: String, counts: Mixed, kept: [Mixed], repliedAttempts: [Number], at: Date }, opts('erasure_receipts')).plugin(outboxPlugin);
  const sweepSchema = new Schema<SweepReceipt>({ _id: String, counts: Mixed, batches: Number, at: Date }, opts('sweep_receipts')).plugin(outboxPlugin);

  const m = app.mongo;
  app.decorate('models', {
    incidents: m.model('Incident', incidentSchema),
    affected: m.model('AffectedChunk', affectedSchema),
    queue: m.model('QueueEntry', queueSchema),
    claims: m.model('DeliveryClaim', claimSchema),
    contacts: m.model('Contact', contactSchema),
    isolatedContacts: m.model('IsolatedContact', isolatedContactSchema),
    optOuts: m.model('NoticeOptOut', optOutSchema),
    erased: m.model('ErasedSubject', erasedSchema),
    notifications: app.outbox.register(m.model('Notification', notificationSchema)),
    batches: app.outbox.register(m.model('FanoutBatch', batchSchema)),
    batchesDone: m.model('BatchDone', doneSchema),
    deliveries: m.model('Delivery', deliverySchema),
    announcements: app.outbox.register(m.model('Announcement', announcementSchema)),
    reports: m.model('Report', reportSchema),
    letters: m.model('Letter', letterSchema),
    sink: m.model('SinkMessage', sinkSchema),
    audit: m.model('AuditRecord', auditSchema),
    erasures: app.outbox.register(m.model('ErasureReceipt', erasureSchema)),
    sweeps: app.outbox.register(m.model('SweepReceipt', sweepSchema)),
  } satisfies Models);
}, { name: 'incident-models', dependencies: ['pipp-infrastructure'] });
