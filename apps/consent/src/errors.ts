import { defineError } from '@pipp/service-kit';

/**
 * The consent service's coded errors (one JSON error shape, docs/architecture.md). Refusals carry the
 * policy clause they rest on.
 */
export const ConsentErrors = {
  /** A purpose, function, document, version, clause or record that does not exist (404). */
  notFound: defineError('PIPP_CONSENT_NOT_FOUND', 404, 'Not found'),
  /** A consent that cannot be given as asked: unknown or non-consent purpose, bad scope (422). */
  invalidConsent: defineError('PIPP_CONSENT_INVALID', 422, 'This consent cannot be recorded'),
  /** A catalogue edit that would break an invariant of the policy (409, clause of the invariant). */
  catalogueConflict: defineError('PIPP_CATALOGUE_CONFLICT', 409, 'The catalogue edit conflicts with the policy'),
  /** The expected revision is not the current one (409): re-read and retry. */
  staleRevision: defineError('PIPP_STALE_REVISION', 409, 'The resource changed meanwhile; re-read it and retry'),
  /** A policy version that cannot be published as asked (409/422, clause VI or 1.1). */
  policyConflict: defineError('PIPP_POLICY_CONFLICT', 409, 'The policy version conflicts with the published ones'),
  invalidPolicy: defineError('PIPP_POLICY_INVALID', 422, 'The policy version is invalid'),
  /**
   * 409: consent to a purpose that performs the agreement with the subject (their account) is not
   * withdrawn on its own; closing the account ends it (an erasure request, policy 4.2).
   */
  closeAccountInstead: defineError('PIPP_CLOSE_ACCOUNT_INSTEAD', 409, 'This ends only with the account: ask for its erasure'),
  /** 410: the data subject's account erasure began; nothing more is recorded about them (policy 4.1, 4.2). */
  subjectErased: defineError('PIPP_SUBJECT_ERASED', 410, "This data subject's account was erased: nothing more is recorded about them"),
  /** 404 to staff: consent holds nothing on this data subject (never registered, or not yet seen here). */
  unknownSubject: defineError('PIPP_SUBJECT_UNKNOWN', 404, 'Consent holds no record of this data subject: not registered, or not yet seen here'),
};
