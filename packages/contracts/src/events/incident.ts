import { Type } from '@sinclair/typebox';
import { ChannelSchema, RecordId, SubjectId, Timestamp } from '../common.js';
import { ServiceNameSchema } from '../services.js';
import { defineEvent } from './define.js';

/** Kinds of notices the incident service delivers on behalf of any service. */
export const NOTIFICATION_KINDS = [
  'security-incident', 'policy-update', 'business-shutdown', 'new-device-sign-in', 'account-leak', 'erasure-completed', 'general',
] as const;

/**
 * The elements (keys of `elements`) a `privacy.notification.requested` of each kind must carry, or the
 * incident service refuses the notice (dead-letters the request):
 * - `security-incident` (policy 5.4.2; PIPL art. 57): the basic situation, the categories of PI, the
 *   possible impact, the measures taken or planned, advice to the subject, and the remedies offered;
 * - `policy-update` (policy VI): the specific changes;
 * - `business-shutdown` (policy 2.4.2(5)): from when the service stops, and what happens to the PI;
 * - the others: free text (`body`) only.
 */
export const NOTICE_REQUIRED_ELEMENTS: Record<(typeof NOTIFICATION_KINDS)[number], readonly string[]> = {
  'security-incident': ['basicSituation', 'categories', 'possibleImpact', 'measures', 'advice', 'remedies'],
  'policy-update': ['changes'],
  'business-shutdown': ['effectiveAt', 'dataHandling'],
  'new-device-sign-in': [],
  'account-leak': [],
  'erasure-completed': [],
  general: [],
};

/** Events consumed (and produced) by the incident service. */
export const incidentEvents = {
  /**
   * Deliver a notice to subjects on their channels, with tracking, retries and fallback (policy 5.4.2,
   * VI, 2.4.2(5)); `allSubjects` or more subjects than the configured threshold means an announcement.
   */
  'privacy.notification.requested': defineEvent({
    version: 1,
    description: 'Notify subjects one by one, or by announcement when that is impractical (policy 5.4.2, VI, 2.4.2(5))',
    producers: ['identity', 'consent', 'retention', 'incident', 'data-sharing'],
    consumers: ['incident'],
    payload: Type.Object({
      notificationId: RecordId,
      kind: Type.Union(NOTIFICATION_KINDS.map((k) => Type.Literal(k))),
      requestedBy: ServiceNameSchema,
      audience: Type.Union([
        Type.Object({ subjectIds: Type.Array(SubjectId, { minItems: 1, maxItems: 1000 }) }, { additionalProperties: false }),
        Type.Object({ allSubjects: Type.Literal(true) }, { additionalProperties: false }),
      ]),
      title: Type.String({ minLength: 1, maxLength: 200 }),
      body: Type.String({ minLength: 1, maxLength: 8000 }),
      /** Named parts a notice must carry, e.g. the changes of a policy update. */
      elements: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z][A-Za-z0-9]{0,63}$' }), Type.String({ maxLength: 4000 }), { additionalProperties: false, maxProperties: 32 })),
      channels: Type.Optional(Type.Array(ChannelSchema, { minItems: 1, maxItems: 5, uniqueItems: true })),
      clause: Type.Optional(Type.String({ maxLength: 32 })),
    }, { additionalProperties: false }),
  }),

  /**
   * Internal to the incident service: plan the fan-out of a recorded notification (the planner pages
   * through its audience and emits `privacy.notification.batch-ready` events). Keyed by notification id.
   * Source: policy 5.4.2, PIPL art. 57.
   */
  'privacy.notification.fanout-requested': defineEvent({
    version: 1,
    description: 'Internal (incident → incident): page through a notification\'s audience and emit batches (policy 5.4.2)',
    producers: ['incident'],
    consumers: ['incident'],
    payload: Type.Object({
      notificationId: RecordId,
    }, { additionalProperties: false }),
  }),

  /**
   * Internal to the incident service: one batch (≤ 1000) of a notification's audience, to be turned into
   * per-subject, per-channel deliveries. `batch` is 1-based; `after` is the audience cursor the batch
   * started after (for tracing). Keyed by notification id. Source: policy 5.4.2, PIPL art. 57.
   */
  'privacy.notification.batch-ready': defineEvent({
    version: 1,
    description: 'Internal (incident → incident): a batch of subjects to notify (policy 5.4.2)',
    producers: ['incident'],
    consumers: ['incident'],
    payload: Type.Object({
      notificationId: RecordId,
      batch: Type.Integer({ minimum: 1 }),
      subjectIds: Type.Array(SubjectId, { minItems: 1, maxItems: 1000 }),
    }, { additionalProperties: false }),
  }),

  /**
   * A public announcement was published (policy 5.4.2: when informing subjects one by one is
   * impractical; 2.4.2(5) shutdowns; VI policy updates). Served anonymously at
   * `GET /v1/incident/public/announcements/:announcementId`; the gateway may cache or index it.
   */
  'privacy.announcement.published': defineEvent({
    version: 1,
    description: 'A public announcement was published (policy 5.4.2, 2.4.2(5), VI)',
    producers: ['incident'],
    consumers: [],
    payload: Type.Object({
      announcementId: RecordId,
      kind: Type.Union(NOTIFICATION_KINDS.map((k) => Type.Literal(k))),
      title: Type.String({ minLength: 1, maxLength: 200 }),
      reason: Type.Union([Type.Literal('above-threshold'), Type.Literal('unreachable-subjects'), Type.Literal('all-subjects'), Type.Literal('operator')]),
      incidentId: Type.Optional(RecordId),
      notificationId: Type.Optional(RecordId),
      publishedAt: Timestamp,
    }, { additionalProperties: false }),
  }),
} as const;

