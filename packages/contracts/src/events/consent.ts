import { Type } from '@sinclair/typebox';
import { CountryCode, PurposeId, RecordId, SubjectId, Timestamp } from '../common.js';
import { DataCategorySchema } from '../data-categories.js';
import { defineEvent } from './define.js';

/**
 * What a consent applies to beyond its purpose, where the policy or PIPL asks for separate consent:
 * a recipient (3.1.2, PIPL art. 23), public disclosure (3.3.1, art. 25), a sensitive category
 * (art. 29) or a destination country (5.3.2, art. 39).
 */
export const ConsentScopeSchema = Type.Object({
  recipientId: Type.Optional(RecordId),
  disclosure: Type.Optional(Type.Boolean()),
  category: Type.Optional(DataCategorySchema),
  country: Type.Optional(CountryCode),
}, { additionalProperties: false });

/** Events produced by the consent service. */
export const consentEvents = {
  /**
   * A consent was granted or withdrawn (policy 2.1.2, 2.4.2(2)); every decision cache drops what it
   * held for the subject, so a withdrawal takes effect everywhere within a second. A grant names the
   * data `categories` it covers (all the purpose's, unless the subject narrowed it): a service holding
   * data of a category no longer covered erases it, as on a withdrawal.
   */
  'privacy.consent.changed': defineEvent({
    version: 1,
    description: 'A consent record was appended: granted or withdrawn (policy 2.1.2, 2.4.2(2))',
    producers: ['consent'],
    consumers: ['identity', 'data-sharing', 'consent', 'incident'],
    payload: Type.Object({
      subjectId: SubjectId,
      recordId: RecordId,
      purpose: PurposeId,
      state: Type.Union([Type.Literal('granted'), Type.Literal('withdrawn')]),
      scope: Type.Optional(ConsentScopeSchema),
      categories: Type.Optional(Type.Array(DataCategorySchema, { maxItems: 64, uniqueItems: true })),
      policyVersion: Type.Optional(Type.Integer({ minimum: 1 })),
      at: Timestamp,
    }, { additionalProperties: false }),
  }),

  /**
   * A policy version was published (policy VI): subjects are notified of the specific changes; when
   * `restrictsRights`, processing under the new terms waits for each subject's express consent.
   */
  'privacy.policy.published': defineEvent({
    version: 1,
    description: 'A policy version was published with its specific changes (policy VI, 1.1)',
    producers: ['consent'],
    consumers: ['incident', 'identity', 'consent'],
    payload: Type.Object({
      documentId: RecordId,
      version: Type.Integer({ minimum: 1 }),
      appliesTo: Type.Union([Type.Literal('general'), Type.String({ minLength: 1, maxLength: 64 })], {
        description: "'general', or the id of the service/function a service-specific policy covers (1.1)",
      }),
      restrictsRights: Type.Boolean(),
      summary: Type.String({ maxLength: 4000 }),
      changes: Type.Array(Type.String({ maxLength: 1000 }), { maxItems: 100 }),
      effectiveAt: Timestamp,
      noticeEndsAt: Timestamp,
      /** Purposes a rights-restricting version touches: processing for them waits for express consent. */
      affectedPurposes: Type.Optional(Type.Array(PurposeId, { maxItems: 64 })),
    }, { additionalProperties: false }),
  }),

  /**
   * A subject accepted a policy version (policy preamble, VI): expressly (at registration, or on a
   * consent screen after a rights-restricting update) or implied by continued use after the notice
   * period of a version that restricts no rights. Every consent instance applies it to its projection.
   */
  'privacy.policy.accepted': defineEvent({
    version: 1,
    description: 'A subject accepted a policy version, expressly or by continued use after notice (policy preamble, VI)',
    producers: ['consent'],
    consumers: ['consent'],
    payload: Type.Object({
      subjectId: SubjectId,
      recordId: RecordId,
      documentId: RecordId,
      version: Type.Integer({ minimum: 1 }),
      express: Type.Boolean(),
      at: Timestamp,
    }, { additionalProperties: false }),
  }),
} as const;
