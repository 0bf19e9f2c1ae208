import { outboxPlugin } from '@pipp/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Schema } from 'mongoose';

// Every collection of the identity service (its own database, DESIGN.md). Documents that announce
// changes carry the hidden outbox (same-document write). Purge dates are plain fields (`purgeAt`,
// `retentionUntil`): FerretDB has no TTL indexes, so sweeps delete by them.

const opts = { versionKey: false, _id: false } as const;

/** Optional profile of a data subject (policy 2.4.1(1)ii); each field may be absent. */
export interface Profile {
  nickname?: string;
  avatarUrl?: string;
  accountName?: string;
  bio?: string;
  gender?: string;
  birthDate?: string;
  email?: string;
  pushEndpoint?: string;
  postalAddress?: string;
}
export const PROFILE_FIELDS = ['nickname', 'avatarUrl', 'accountName', 'bio', 'gender', 'birthDate', 'email', 'pushEndpoint', 'postalAddress'] as const;
export type ProfileField = (typeof PROFILE_FIELDS)[number];
/** Profile fields that are contact channels (published to incident, policy 5.4.2). */
export const CONTACT_FIELDS: ProfileField[] = ['email', 'pushEndpoint', 'postalAddress'];
/** The other profile fields: optional profile information, kept only with consent to purpose `profile` (policy 2.4.1(1)ii). */
export const OPTIONAL_PROFILE_FIELDS: ProfileField[] = PROFILE_FIELDS.filter((f) => !CONTACT_FIELDS.includes(f));

/** True when `patch` sets (not removes) one of `fields` that is optional profile information. */
export const setsOptionalProfile = (patch: Record<string, string | null>, fields: string[] = Object.keys(patch)): boolean =>
  fields.some((f) => patch[f] !== null && patch[f] !== undefined && (OPTIONAL_PROFILE_FIELDS as string[]).includes(f));

export interface LeakReportRecord { reportId: string; reportedBy: 'subject' | 'support'; actorId: string; description?: string; at: Date }

/** A data subject's account (policy 2.4.1(1)): the verified mobile number is the one required datum. */
export interface Account {
  _id: string;
  /** E.164; `erased:<id>` once erased (keeps the unique index without PI). */
  phone: string;
  phoneRegion?: string;
  status: 'active' | 'erased';
  passwordHash?: string;
  passwordSetAt?: Date;
  mustResetPassword: boolean;
  profile: Profile;
  policyAck?: { documentId: string; version: number; at: Date };
  leakReports: LeakReportRecord[];
  createdAt: Date;
  updatedAt: Date;
  erasedAt?: Date;
  /** When the registrant granted the `profile` purpose by giving optional information at registration (policy 2.4.1(1)ii): until consent has recorded it, identity waits for it (see requireProfileConsent). */
  profileGrantedAt?: Date;
  /** When a withdrawal of the `profile` consent last erased the optional profile: a write of profile data read before it must not land (policy 2.4.1(1)ii). */
  profileErasedAt?: Date;
}

/** A staff account (operator or DPO): not a data subject; same sign-in rules, separate namespace. */
export interface Staff {
  _id: string;
  phone: string;
  role: 'operator' | 'dpo';
  displayName: string;
  passwordHash: string;
  active: boolean;
  createdBy: string;
  createdAt: Date;
}

/** A session = one refresh-token family (rotation with reuse detection). */
export interface Session {
  _id: string;
  subjectId: string;
  kind: 'subject' | 'staff';
  role: 'subject' | 'operator' | 'dpo';
  refreshHash: string;
  /** Hashes of rotated refresh tokens (newest first, bounded): presenting one again is reuse. */
  previous: string[];
  active: boolean;
  createdAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
  revokedAt?: Date;
  revokeReason?: string;
  deviceId?: string;
  userAgent?: string;
  ipPrefix?: string;
  purgeAt: Date;
}

export interface OtpCode {
  _id: string;
  codeHash: string;
  expiresAt: Date;
  attempts: number;
  consumed: boolean;
  sentAt: Date;
  purgeAt: Date;
}

export interface Counter {
  _id: string;
  count: number;
  lockedUntil?: Date;
  purgeAt: Date;
}

/** What the SMS provider was asked to send (the local sink's "sent" record). Holds PI: purged. */
export interface SmsMessage {
  _id: string;
  to: string;
  text: string;
  purpose: string;
  at: Date;
  purgeAt: Date;
}

/** A device seen at sign-in, kept for account security (policy 2.4.1(3), basis service-security). */
export interface Device {
  _id: string;
  subjectId: string;
  kind: 'subject' | 'staff';
  /** SHA-256 of subject id and the client's device id (pseudonymous). */
  deviceKey: string;
  userAgent: string;
  ipPrefix: string;
  network: string;
  firstSeenAt: Date;
  lastSeenAt: Date;
  signIns: number;
  purpose: 'security';
  legalBasis: 'service-security';
  retentionUntil: Date;
}

/** One sign-in attempt's risk assessment, explained factor by factor (policy 2.4.1(3)). */
export interface SignInRecord {
  _id: string;
  subjectId: string;
  at: Date;
  outcome: 'success' | 'code-required' | 'failed';
  method: 'password' | 'code' | 'step-up' | 'registration';
  score: number;
  factors: { factor: string; points: number; detail: string }[];
  deviceId?: string;
  ipPrefix?: string;
  purpose: 'security';
  legalBasis: 'service-security';
  retentionUntil: Date;
}

export interface Challenge {
  _id: string;
  subjectId: string;
  kind: 'subject' | 'staff';
  phone: string;
  deviceKey: string;
  deviceLabel: { userAgent: string; ipPrefix: string; network: string };
  assessmentId: string;
  expiresAt: Date;
  consumed: boolean;
  purgeAt: Date;
}

/** Browsing, search and usage events, kept only while the subject consents (policy 2.4.1(2)). */
export interface Activity {
  _id: string;
  subjectId: string;
  kind: 'browse' | 'search' | 'usage';
  at: Date;
  target?: string;
  query?: string;
  action?: string;
  basis: { kind: string; consentRecordId?: string };
  retentionUntil: Date;
}

/** Who changed or read what in a subject's account (policy 4.1.2; DESIGN.md audit records). */
export interface AuditRecord {
  _id: string;
  subjectId: string;
  at: Date;
  actor: { role: string; id: string };
  action: string;
  fields: string[];
  requestId?: string;
  reason?: string;
  retentionUntil: Date;
}

export interface PhoneChange {
  _id: string;
  subjectId: string;
  newPhone: string;
  expiresAt: Date;
  consumed: boolean;
  purgeAt: Date;
}

export interface PolicyVersion { _id: string; version: number; publishedAt: Date }
export interface FunctionShutdown { _id: string; shutdownId: string; effectiveAt: Date; title: string }

/** An erasure request as identity handled it: the reply is repeated verbatim on redelivery. */
export interface ErasureRecord {
  _id: string;
  subjectId: string;
  counts: { erased: number; anonymized: number; kept: number };
  kept: { category: string; legalBasis: string; purgeAt: string; reason: string }[];
  completedAt: Date;
  attempts: number[];
}

/** Data kept by law despite an erasure: isolated from all processing until purgeAt (policy 4.2, 5.1). */
export interface LegalHoldRecord {
  _id: string;
  subjectId: string;
  requestId: string;
  category: string;
  legalBasis: string;
  evidenceRef: string;
  purgeAt: Date;
  data: Record<string, unknown>;
  isolatedAt: Date;
}

/** The latest consent identity acted on per subject and purpose (`privacy.consent.changed`): a late, older record changes nothing. */
export interface ConsentState { _id: string; subjectId: string; at: Date; state: 'granted' | 'withdrawn' }

export interface SweepRecord { _id: string; status: string; counts: { erased: number; anonymized: number; kept: number }; batches: number; at: Date }

/** The retention period of a category as the last sweep of the retention service gave it (`retention_rules`, by category). */
export interface RetentionRuleRecord { _id: string; periodDays: number; action: string; sweepId: string; asOf: Date }

function build(app: FastifyInstance) {
  const m = app.mongo.model.bind(app.mongo);
  const reg = app.outbox.register.bind(app.outbox);

  const accounts = reg(m<Account>('Account', new Schema<Account>({
    _id: String,
    phone: { type: String, required: true },
    phoneRegion: String,
    status: { type: String, required: true },
    passwordHash: { type: String, select: false },
    passwordSetAt: Date,
    mustResetPassword: { type: Boolean, default: false },
    profile: { type: new Schema<Profile>(Object.fromEntries(PROFILE_FIELDS.map((f) => [f, String])), opts), default: {} },
    policyAck: { type: new Schema({ documentId: String, version: Number, at: Date }, opts) },
    leakReports: { type: [new Schema({ reportId: String, reportedBy: String, actorId: String, description: String, at: Date }, opts)], default: [] },
    createdAt: Date,
    updatedAt: Date,
    erasedAt: Date,
    profileGrantedAt: Date,
    profileErasedAt: Date,
  }, { collection: 'accounts', versionKey: false, minimize: false }).index({ phone: 1 }, { unique: true }).plugin(outboxPlugin)));

  const accountNames = m<{ _id: string; subjectId: string }>('AccountName', new Schema({ _id: String, subjectId: String }, { collection: 'account_names', versionKey: false }).index({ subjectId: 1 }));

  const staff = reg(m<Staff>('Staff', new Schema<Staff>({
    _id: String, phone: { type: String, required: true }, role: String, displayName: String,
    passwordHash: { type: String, select: false }, active: Boolean, createdBy: String, createdAt: Date,
  }, { collection: 'staff', versionKey: false }).index({ phone: 1 }, { unique: true }).plugin(outboxPlugin)));

  const sessions = reg(m<Session>('Session', new Schema<Session>({
    _id: String, subjectId: { type: String, required: true }, kind: String, role: String,
    refreshHash: { type: String, select: false }, previous: { type: [String], select: false, default: [] },
    active: Boolean, createdAt: Date, lastUsedAt: Date, expiresAt: Date, revokedAt: Date, revokeReason: String,
    deviceId: String, userAgent: String, ipPrefix: String, purgeAt: Date,
  }, { collection: 'sessions', versionKey: false }).index({ subjectId: 1 }).index({ purgeAt: 1 }).plugin(outboxPlugin)));

  const otpCodes = m<OtpCode>('OtpCode', new Schema<OtpCode>({
    _id: String, codeHash: String, expiresAt: Date, attempts: Number, consumed: Boolean, sentAt: Date, purgeAt: Date,
  }, { collection: 'otp_codes', versionKey: false }).index({ purgeAt: 1 }));

  const counters = m<Counter>('Counter', new Schema<Counter>({
    _id: String, count: Number, lockedUntil: Date, purgeAt: Date,
  }, { collection: 'counters', versionKey: false }).index({ purgeAt: 1 }));

  const smsSink = m<SmsMessage>('SmsMessage', new Schema<SmsMessage>({
    _id: String, to: String, text: String, purpose: String, at: Date, purgeAt: Date,
  }, { collection: 'sms_sink', versionKey: false }).index({ to: 1, at: -1 }).index({ purgeAt: 1 }));

  const devices = reg(m<Device>('Device', new Schema<Device>({
    _id: String, subjectId: String, kind: String, deviceKey: String, userAgent: String, ipPrefix: String, network: String,
    firstSeenAt: Date, lastSeenAt: Date, signIns: Number, purpose: String, legalBasis: String, retentionUntil: Date,
  }, { collection: 'devices', versionKey: false }).index({ subjectId: 1 }).index({ retentionUntil: 1 }).plugin(outboxPlugin)));

  const signIns = m<SignInRecord>('SignIn', new Schema<SignInRecord>({
    _id: String, subjectId: String, at: Date, outcome: String, method: String, score: Number,
    factors: { type: [new Schema({ factor: String, points: Number, detail: String }, opts)], default: [] },
    deviceId: String, ipPrefix: String, purpose: String, legalBasis: String, retentionUntil: Date,
  }, { collection: 'sign_ins', versionKey: false }).index({ subjectId: 1, at: -1 }).index({ retentionUntil: 1 }));

  const challenges = m<Challenge>('Challenge', new Schema<Challenge>({
    _id: String, subjectId: String, kind: String, phone: String, deviceKey: String,
    deviceLabel: { type: new Schema({ userAgent: String, ipPrefix: String, network: String }, opts) },
    assessmentId: String, expiresAt: Date, consumed: Boolean, purgeAt: Date,
  }, { collection: 'sign_in_challenges', versionKey: false }).index({ subjectId: 1 }).index({ purgeAt: 1 }));

  const activity = m<Activity>('Activity', new Schema<Activity>({
    _id: String, subjectId: String, kind: String, at: Date, target: String, query: String, action: String,
    basis: { type: new Schema({ kind: String, consentRecordId: String, legalBasis: String, evidenceRef: String }, opts) },
    retentionUntil: Date,
  }, { collection: 'activity', versionKey: false }).index({ subjectId: 1, at: -1 }).index({ retentionUntil: 1 }));

  const audit = m<AuditRecord>('Audit', new Schema<AuditRecord>({
    _id: String, subjectId: String, at: Date, actor: { type: new Schema({ role: String, id: String }, opts) },
    action: String, fields: [String], requestId: String, reason: String, retentionUntil: Date,
  }, { collection: 'audit', versionKey: false }).index({ subjectId: 1, at: -1 }).index({ retentionUntil: 1 }));

  const phoneChanges = m<PhoneChange>('PhoneChange', new Schema<PhoneChange>({
    _id: String, subjectId: String, newPhone: String, expiresAt: Date, consumed: Boolean, purgeAt: Date,
  }, { collection: 'phone_changes', versionKey: false }).index({ subjectId: 1 }).index({ purgeAt: 1 }));

  const policyVersions = m<PolicyVersion>('PolicyVersion', new Schema<PolicyVersion>({ _id: String, version: Number, publishedAt: Date }, { collection: 'policy_versions', versionKey: false }));
  const shutdowns = m<FunctionShutdown>('FunctionShutdown', new Schema<FunctionShutdown>({ _id: String, shutdownId: String, effectiveAt: Date, title: String }, { collection: 'function_shutdowns', versionKey: false }));

  const erasures = reg(m<ErasureRecord>('Erasure', new Schema<ErasureRecord>({
    _id: String, subjectId: String, counts: { type: new Schema({ erased: Number, anonymized: Number, kept: Number }, opts) },
    kept: { type: [new Schema({ category: String, legalBasis: String, purgeAt: String, reason: String }, opts)], default: [] },
    completedAt: Date, attempts: [Number],
  }, { collection: 'erasures', versionKey: false }).index({ subjectId: 1 }).plugin(outboxPlugin)));

  const legalHolds = m<LegalHoldRecord>('LegalHold', new Schema<LegalHoldRecord>({
    _id: String, subjectId: String, requestId: String, category: String, legalBasis: String, evidenceRef: String,
    purgeAt: Date, data: Schema.Types.Mixed, isolatedAt: Date,
  }, { collection: 'legal_holds', versionKey: false }).index({ subjectId: 1 }).index({ purgeAt: 1 }));

  const sweeps = reg(m<SweepRecord>('Sweep', new Schema<SweepRecord>({
    _id: String, status: String, counts: { type: new Schema({ erased: Number, anonymized: Number, kept: Number }, opts) }, batches: Number, at: Date,
  }, { collection: 'sweeps', versionKey: false }).plugin(outboxPlugin)));

  const consentStates = m<ConsentState>('ConsentState', new Schema<ConsentState>({ _id: String, subjectId: String, at: Date, state: String }, {
    collection: 'consent_states', versionKey: false,
  }).index({ subjectId: 1 }));

  const retentionRules = m<RetentionRuleRecord>('RetentionRule', new Schema<RetentionRuleRecord>({
    _id: String, periodDays: Number, action: String, sweepId: String, asOf: Date,
  }, { collection: 'retention_rules', versionKey: false }));

  // Which version of a derived form stored data is in (e.g. the account-name key function), for one-off migrations.
  const migrations = m<{ _id: string; version: number; at: Date }>('Migration', new Schema({ _id: String, version: Number, at: Date }, { collection: 'migrations', versionKey: false }));

  return {
    migrations, accounts, accountNames, staff, sessions, otpCodes, counters, smsSink, devices, signIns, challenges, activity, audit,
    phoneChanges, policyVersions, shutdowns, erasures, legalHolds, consentStates, sweeps, retentionRules,
  };
}

export type Models = ReturnType<typeof build>;

declare module 'fastify' {
  interface FastifyInstance {
    models: Models;
  }
}

/** Declares identity's models on its own database (`app.models`). */
export const modelsPlugin = fp(async function models(app: FastifyInstance) {
  app.decorate('models', build(app));
}, { name: 'identity-models', dependencies: ['pipp-infrastructure'] });
