import { Type, type Static } from '@sinclair/typebox';
import { EffectCounts, RecordId, SubjectId, Timestamp } from '../common.js';
import { DataCategorySchema } from '../data-categories.js';
import { LegalBasisSchema } from '../legal-bases.js';
import { ErasureParticipantSchema, RoleSchema } from '../services.js';
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

const RetentionRule = Type.Object({
  category: DataCategorySchema,
  periodDays: Type.Integer({ minimum: 0, maximum: 36500 }),
  action: Type.Union([Type.Literal('erase'), Type.Literal('anonymize')]),
  criterion: Type.Union([Type.Literal('5.2.1'), Type.Literal('5.2.2'), Type.Literal('5.2.3')]),
}, { additionalProperties: false });

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
    consumers: ['identity', 'consent', 'data-sharing', 'incident', 'gateway'],
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
      rules: Type.Array(RetentionRule, { maxItems: 64 }),
      asOf: Timestamp,
      batchSize: Type.Integer({ minimum: 1, maximum: 10000 }),
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
    }, { additionalProperties: false }),
  }),
} as const;
