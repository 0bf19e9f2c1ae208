import { Type } from '@sinclair/typebox';
import { ChannelSchema, RecordId, SubjectId } from '../common.js';
import { ServiceNameSchema } from '../services.js';
import { defineEvent } from './define.js';

/** Kinds of notices the incident service delivers on behalf of any service. */
export const NOTIFICATION_KINDS = [
  'security-incident', 'policy-update', 'business-shutdown', 'new-device-sign-in', 'account-leak', 'erasure-completed', 'general',
] as const;

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
      elements: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 4000 }))),
      channels: Type.Optional(Type.Array(ChannelSchema, { minItems: 1, maxItems: 5, uniqueItems: true })),
      clause: Type.Optional(Type.String({ maxLength: 32 })),
    }, { additionalProperties: false }),
  }),
} as const;

