import { Type, type Static } from '@sinclair/typebox';
import { CountryCode, EffectCounts, RecordId, SubjectId, Timestamp } from '../common.js';
import { DataCategorySchema } from '../data-categories.js';
import { LegalBasisSchema } from '../legal-bases.js';
import { ErasureParticipantSchema, RoleSchema, SERVICES, ServiceNameSchema } from '../services.js';
import { defineEvent } from './define.js';

/**
 * Why PI is erased: the subject's right (4.1), a ground of 4.2.1–4.2.5, the end of a retention period
 * (5.1, 4.2.5), or a business shutdown (2.4.2(5)).
 */
export const ERASURE_GROUNDS = ['4.1', '4.2.1', '4.2.2', '4.2.3', '4.2.4', '4.2.5', '5.1', '2.4.2(5)'] as const;
export type ErasureGround = (typeof ERASURE_GROUNDS)[number];
export const ErasureGroundSchema = Type.Union(ERASURE_GROUNDS.map((g) => Type.Literal(g)));

/** What an erasure covers: the whole account, or some categories of the subject's PI. */
export const ErasureScopeSchema = Type.Union([
  Type.Object({ kind: Type.Literal('account') }, { additionalProperties: false }),
  Type.Object({
    kind: Type.Literal('categories'),
    categories: Type.Array(DataCategorySchema, { minItems: 1, maxItems: 32, uniqueItems: true }),
  }, { additionalProperties: false }),
]);
export type ErasureScope = Static<typeof ErasureScopeSchema>;

/** Data that must be kept by law despite the erasure: isolated with its basis until purgeAt (4.2, 5.1). */
export const LegalHoldSchema = Type.Object({
  category: DataCategorySchema,
  legalBasis: LegalBasisSchema,
  evidenceRef: Type.String({ minLength: 1, maxLength: 512 }),
  purgeAt: Timestamp,
}, { additionalProperties: false });

/**
 * When a retention period starts counting for a record (the participant knows its records' dates):
 * `collection` (the record was created), `last-activity` (the subject last used the account),
 * `account-closure` (the account was erased or closed), `purpose-fulfilled` (the purpose ended,
 * e.g. a transaction completed or a consent was withdrawn).
 */
export const RETENTION_CLOCKS = ['collection', 'last-activity', 'account-closure', 'purpose-fulfilled'] as const;
export type RetentionClock = (typeof RETENTION_CLOCKS)[number];

/**
 * One retention rule (policy 5.1, 5.2): keep `category` for `periodDays` days from `startsFrom`, then
 * `action` it. `criterion` is the 5.2 criterion behind the period. `service`, when present, makes the
 * rule apply to that service only, overriding the general rule for the category there.
 */
export const RetentionRuleSchema = Type.Object({
  category: DataCategorySchema,
  periodDays: Type.Integer({ minimum: 0, maximum: 36500 }),
  action: Type.Union([Type.Literal('erase'), Type.Literal('anonymize')]),
  criterion: Type.Union([Type.Literal('5.2.1'), Type.Literal('5.2.2'), Type.Literal('5.2.3')]),
  service: Type.Optional(ServiceNameSchema),
  startsFrom: Type.Optional(Type.Union(RETENTION_CLOCKS.map((c) => Type.Literal(c)))),
}, { additionalProperties: false });
export type RetentionRule = Static<typeof RetentionRuleSchema>;
const RetentionRule = RetentionRuleSchema;

/** Subjects one sweep request can name as held by law (`heldSubjects`; about 70 bytes each, under the broker's 1 MB). */
export const MAX_HELD_SUBJECTS = 10_000;

/** Exceptions of policy 5.3 that allow PI collected in the PRC to be stored abroad. */
export const RESIDENCY_EXCEPTIONS = ['5.3.1', '5.3.2', '5.3.3'] as const;
export type ResidencyException = (typeof RESIDENCY_EXCEPTIONS)[number];

/** Events produced by the retention service (the erasure saga's orchestrator) and its participants. */
export const retentionEvents = {
  /**
   * Erase or anonymize what you hold for this subject within `scope`, except `legalHolds`, which are
   * isolated instead; then reply with `privacy.erasure.participant-replied`. Redelivered (same
   * requestId, higher `attempt`) until every participant answered: handling must be idempotent.
   */
  'privacy.erasure.requested': defineEvent({
    version: 1,
    description: 'Erase the subject\'s PI in scope (policy 4.1, 4.2, 5.1, 2.4.2(5))',
    producers: ['retention'],
    consumers: ['identity', 'consent', 'data-sharing', 'incident', 'retention'],
    payload: Type.Object({
      requestId: RecordId,
      subjectId: SubjectId,
      scope: ErasureScopeSchema,
      ground: ErasureGroundSchema,
      origin: Type.Union([Type.Literal('subject'), Type.Literal('operator'), Type.Literal('expiry-sweep'), Type.Literal('business-shutdown')]),
      requestedBy: Type.Object({ role: RoleSchema, actorId: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false }),
      legalHolds: Type.Array(LegalHoldSchema, { maxItems: 64 }),
      deadline: Timestamp,
      attempt: Type.Integer({ minimum: 1 }),
      participants: Type.Optional(Type.Array(ErasureParticipantSchema, { uniqueItems: true, description: 'Only these should act (a retry of failed ones); absent means all' })),
      purgeIsolated: Type.Optional(Type.Boolean({ description: 'true: the purge date of records you isolated as kept by law (in scope) has come; purge them too (policy 4.2-backups, 5.1)' })),
      restoreId: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Set when the erasure is re-applied after a backup restore (policy 4.2-backups)' })),
    }, { additionalProperties: false }),
  }),

  /** A participant's answer to an erasure request, with what it erased, anonymized and kept. */
  'privacy.erasure.participant-replied': defineEvent({
    version: 1,
    description: 'A participant finished (or failed) its part of an erasure (policy 4.1, 4.2)',
    producers: ['identity', 'consent', 'data-sharing', 'incident', 'retention'],
    consumers: ['retention'],
    payload: Type.Object({
      requestId: RecordId,
      subjectId: SubjectId,
      participant: ErasureParticipantSchema,
      attempt: Type.Integer({ minimum: 1 }),
      status: Type.Union([Type.Literal('completed'), Type.Literal('failed')]),
      counts: EffectCounts,
      kept: Type.Array(Type.Object({
        category: DataCategorySchema,
        legalBasis: LegalBasisSchema,
        purgeAt: Timestamp,
        reason: Type.String({ maxLength: 500 }),
      }, { additionalProperties: false }), { maxItems: 64 }),
      /** data-sharing: recipients notified (4.2-recipients) that have not acknowledged yet. */
      pendingRecipients: Type.Optional(Type.Array(RecordId, { maxItems: 1000 })),
      error: Type.Optional(Type.String({ maxLength: 1000 })),
    }, { additionalProperties: false }),
  }),

  /** Every participant completed: the subject's erasure request is closed (policy 4.1). */
  'privacy.erasure.completed': defineEvent({
    version: 1,
    description: 'An erasure request completed at every participant (policy 4.1, 4.2)',
    producers: ['retention'],
    consumers: ['incident'],
    payload: Type.Object({
      requestId: RecordId,
      subjectId: SubjectId,
      completedAt: Timestamp,
      counts: EffectCounts,
    }, { additionalProperties: false }),
  }),

  /**
   * A function or product is closed (policy 2.4.2(5)): from `effectiveAt` every service refuses new
   * data for it; its data is erased or anonymized through the saga; subjects are notified.
   */
  'privacy.function.shutdown': defineEvent({
    version: 1,
    description: 'A function or product stopped operating (policy 2.4.2(5))',
    producers: ['retention'],
    consumers: ['identity', 'consent', 'data-sharing', 'gateway'],
    // Kept for good: a service that starts later (or replays) must still know what is closed.
    topicConfig: { 'retention.ms': '-1', 'cleanup.policy': 'delete' },
    payload: Type.Object({
      shutdownId: RecordId,
      functionId: Type.String({ minLength: 1, maxLength: 64 }),
      title: Type.String({ minLength: 1, maxLength: 200 }),
      effectiveAt: Timestamp,
      action: Type.Union([Type.Literal('erase'), Type.Literal('anonymize')]),
      categories: Type.Array(DataCategorySchema, { maxItems: 32 }),
    }, { additionalProperties: false }),
  }),

  /**
   * The retention periods in force (policy 5.1, 5.2), announced when retention starts and whenever the
   * DPO changes a policy: services that show a record's retention date (identity's activity and device
   * records) take them at once rather than at the next sweep (daily), which left a subject shown a
   * 90-day date while the DPO's policy said 180. The same rules a sweep carries; nothing is erased by it.
   */
  'privacy.retention.periods-changed': defineEvent({
    version: 1,
    description: 'The retention periods in force (policy 5.1, 5.2)',
    producers: ['retention'],
    consumers: ['identity'],
    topicConfig: { 'retention.ms': '-1', 'cleanup.policy': 'delete' },
    payload: Type.Object({
      asOf: Timestamp,
      rules: Type.Array(RetentionRule, { maxItems: 256 }),
    }, { additionalProperties: false }),
  }),

  /**
   * A legal hold on one subject's PI was placed or released (policy 4.1 "exceptions stipulated by laws
   * and regulations", PIPL art. 47). Erasures carry their holds themselves (`legalHolds`); this event
   * reaches what deletes PI outside the saga: expiry sweeps in every participant (the kit's
   * legalHoldsPlugin keeps the holds, however many; a sweep request names at most MAX_HELD_SUBJECTS)
   * and identity's deletion after a consent withdrawal (PIPL art. 47(1)(3)), which keeps held
   * categories isolated instead. `categories` empty means every
   * category; the hold ends at `until` or when an event with `status: 'released'` arrives. Keyed by
   * the subject.
   */
  'privacy.legal-hold.changed': defineEvent({
    version: 1,
    description: 'A legal hold on a subject\'s PI was placed or released (policy 4.1)',
    producers: ['retention'],
    consumers: ['identity', 'consent', 'data-sharing', 'incident'],
    // Kept for good: a participant that starts later must still know the holds in force.
    topicConfig: { 'retention.ms': '-1', 'cleanup.policy': 'delete' },
    payload: Type.Object({
      holdId: RecordId,
      subjectId: SubjectId,
      categories: Type.Array(DataCategorySchema, { maxItems: 32 }),
      mode: Type.Union([Type.Literal('isolate'), Type.Literal('block')]),
      legalBasis: LegalBasisSchema,
      evidenceRef: Type.String({ minLength: 1, maxLength: 512 }),
      until: Timestamp,
      status: Type.Union([Type.Literal('active'), Type.Literal('released')]),
    }, { additionalProperties: false }),
  }),

  /**
   * Find PI past its retention period (policy 5.1, 5.2, 4.2.5) and erase or anonymize it, in batches;
   * reply with `privacy.retention.sweep-replied`.
   */
  'privacy.retention.sweep-requested': defineEvent({
    version: 1,
    description: 'Apply retention periods: erase or anonymize expired PI (policy 5.1, 5.2, 4.2.5)',
    producers: ['retention'],
    consumers: ['identity', 'consent', 'data-sharing', 'incident', 'retention'],
    payload: Type.Object({
      sweepId: RecordId,
      rules: Type.Array(RetentionRule, { maxItems: 256 }),
      asOf: Timestamp,
      batchSize: Type.Integer({ minimum: 1, maximum: 10000 }),
      /** Redelivery number (1 first); a participant that already finished this sweep replies its result again. */
      attempt: Type.Optional(Type.Integer({ minimum: 1 })),
      /** Only these should act (a redelivery to silent ones); absent means all. */
      participants: Type.Optional(Type.Array(ErasureParticipantSchema, { uniqueItems: true })),
      /**
       * A business shutdown (policy 2.4.2(5)): the rules (period 0) cover the PI collected for this
       * function; erase or anonymize all of it, not only what is past a period.
       */
      shutdown: Type.Optional(Type.Object({ shutdownId: RecordId, functionId: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false })),
      /**
       * What the legal holds in force at `asOf` cover (policy 4.1; PIPL art. 47): leave these subjects'
       * data of these categories (none listed: every category) as it is, past its period or not. The
       * hold ends later; the next sweep then takes it. Absent means none.
       */
      heldSubjects: Type.Optional(Type.Array(Type.Object({
        subjectId: SubjectId,
        categories: Type.Array(DataCategorySchema, { maxItems: 32 }),
      }, { additionalProperties: false }), { maxItems: MAX_HELD_SUBJECTS })),
    }, { additionalProperties: false }),
  }),

  /** A participant's progress or result for a retention sweep. */
  'privacy.retention.sweep-replied': defineEvent({
    version: 1,
    description: 'A participant applied (part of) a retention sweep (policy 5.1)',
    producers: ['identity', 'consent', 'data-sharing', 'incident', 'retention'],
    consumers: ['retention'],
    payload: Type.Object({
      sweepId: RecordId,
      participant: ErasureParticipantSchema,
      status: Type.Union([Type.Literal('in-progress'), Type.Literal('completed'), Type.Literal('failed')]),
      counts: EffectCounts,
      batches: Type.Integer({ minimum: 0 }),
      error: Type.Optional(Type.String({ maxLength: 1000 })),
      /** The redelivery this answers (1 when absent). */
      attempt: Type.Optional(Type.Integer({ minimum: 1 })),
      /**
       * Subjects whose whole account reached the end of its retention period here (e.g. closed or
       * inactive accounts): retention opens an account erasure for each through the saga (ground 4.2.5),
       * so every service erases them, not only this one.
       */
      expiredSubjects: Type.Optional(Type.Array(SubjectId, { maxItems: 1000 })),
    }, { additionalProperties: false }),
  }),

  /**
   * Where a service stores PI (policy 5.3, PIPL art. 40): announced by the service kit of every service
   * at start-up. `flagged` when a store is outside the home region without a 5.3 exception and its
   * reference; the retention service keeps the declarations and reports them.
   */
  'privacy.residency.declared': defineEvent({
    version: 1,
    description: 'A service declared where its stores are (policy 5.3)',
    producers: SERVICES,
    consumers: ['retention'],
    payload: Type.Object({
      service: ServiceNameSchema,
      instanceId: Type.String({ minLength: 1, maxLength: 64 }),
      homeRegion: CountryCode,
      stores: Type.Array(Type.Object({
        store: Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9-]+$', description: 'e.g. mongodb, kafka, backups' }),
        location: CountryCode,
      }, { additionalProperties: false }), { minItems: 1, maxItems: 16 }),
      exception: Type.Optional(Type.Object({
        clause: Type.Union(RESIDENCY_EXCEPTIONS.map((c) => Type.Literal(c))),
        reference: Type.String({ minLength: 1, maxLength: 512 }),
      }, { additionalProperties: false })),
      flagged: Type.Boolean(),
      declaredAt: Timestamp,
    }, { additionalProperties: false }),
  }),
} as const;
