import { Type } from '@sinclair/typebox';
import { ChannelSchema, PurposeId, RecordId, SubjectId, Timestamp } from '../common.js';
import { defineEvent } from './define.js';

/** Events produced by the identity service. */
export const identityEvents = {
  /**
   * A data subject registered with a verified mobile number (policy 2.4.1(1)i) and acknowledged the
   * policy version shown to them (preamble); the consent service records the acknowledgment.
   * `grantedPurposes`: additional purposes the registrant granted expressly at registration by giving
   * the optional information they need (`profile`: a nickname or login password, 2.4.1(1)ii); consent
   * records each as an express grant on the registration channel. Absent when none.
   */
  'privacy.subject.registered': defineEvent({
    version: 1,
    description: 'A subject registered and acknowledged a policy version (policy preamble, 2.4.1(1)i)',
    producers: ['identity'],
    consumers: ['consent'],
    payload: Type.Object({
      subjectId: SubjectId,
      registeredAt: Timestamp,
      policyAcknowledged: Type.Object({
        documentId: RecordId,
        version: Type.Integer({ minimum: 1 }),
      }, { additionalProperties: false }),
      grantedPurposes: Type.Optional(Type.Array(PurposeId, { minItems: 1, maxItems: 16, uniqueItems: true })),
    }, { additionalProperties: false }),
  }),

  /**
   * Access tokens of a subject (all of them, or one session's) issued before `notBefore` must be
   * rejected by every service from now on: sign-out, password change, leak report (5.4.1), refresh
   * token reuse, erasure. Kept on a short-retention topic that each service instance replays at start.
   */
  'privacy.session.revoked': defineEvent({
    version: 1,
    description: 'Tokens issued before notBefore (for a subject or one session) are revoked everywhere',
    producers: ['identity'],
    consumers: ['gateway', 'identity', 'consent', 'data-sharing', 'retention', 'incident'],
    payload: Type.Object({
      subjectId: SubjectId,
      sessionId: Type.Optional(RecordId),
      notBefore: Timestamp,
      reason: Type.Union([
        Type.Literal('sign-out'), Type.Literal('password-changed'), Type.Literal('phone-changed'),
        Type.Literal('leak-reported'), Type.Literal('refresh-reuse'), Type.Literal('revoked-by-subject'),
        Type.Literal('revoked-by-operator'), Type.Literal('erasure'),
      ]),
    }, { additionalProperties: false }),
    topicConfig: { 'retention.ms': String(24 * 3600 * 1000), 'cleanup.policy': 'delete' },
  }),

  /** A subject (or support on their behalf) reported their account leaked (policy 5.4.1). */
  'privacy.account.leak-reported': defineEvent({
    version: 1,
    description: 'An account was reported compromised; sessions were revoked and a reset forced (policy 5.4.1)',
    producers: ['identity'],
    consumers: ['incident'],
    payload: Type.Object({
      subjectId: SubjectId,
      reportId: RecordId,
      reportedBy: Type.Union([Type.Literal('subject'), Type.Literal('support')]),
      description: Type.Optional(Type.String({ maxLength: 2000 })),
      reportedAt: Timestamp,
      /** False for an account without a password (one-time codes only): nothing to reset. Absent: true. */
      passwordResetRequired: Type.Optional(Type.Boolean()),
    }, { additionalProperties: false }),
  }),

  /**
   * The channels on which a subject can be notified changed (policy 5.4.2). Carries contact PI, so
   * consumers keep it only as long as the subject exists and erase it in the saga.
   */
  'privacy.subject.contact-changed': defineEvent({
    version: 1,
    description: 'The contact channels of a subject changed (for notifications, policy 5.4.2)',
    producers: ['identity'],
    consumers: ['incident'],
    payload: Type.Object({
      subjectId: SubjectId,
      channels: Type.Object({
        sms: Type.Optional(Type.String({ pattern: '^\\+[1-9][0-9]{6,14}$', description: 'E.164' })),
        telephone: Type.Optional(Type.String({ pattern: '^\\+[1-9][0-9]{6,14}$', description: 'E.164' })),
        email: Type.Optional(Type.String({ format: 'email', maxLength: 254 })),
        push: Type.Optional(Type.String({ format: 'uri', maxLength: 2048 })),
        letter: Type.Optional(Type.String({ maxLength: 500, description: 'Postal address' })),
      }, { additionalProperties: false }),
      preferred: Type.Optional(Type.Array(ChannelSchema, { maxItems: 5 })),
    }, { additionalProperties: false }),
  }),
} as const;
