import { defineError } from '@pipp/service-kit';

/**
 * The data-sharing service's coded errors (one JSON shape, `ErrorResponseSchema`). Refusals carry the
 * policy clause behind them in `clause`; messages say what is missing and how to obtain it.
 */
export const DsErrors = {
  /** 403: no separate consent for this recipient and no admissible legal basis (policy 3.1, 3.4). */
  sharingRefused: defineError('PIPP_SHARING_REFUSED', 403, 'Sharing with this recipient is not allowed'),
  /** 403: a cross-border transfer without a 5.3 ground that holds (policy 5.3, PIPL art. 38–39). */
  transferRefused: defineError('PIPP_CROSS_BORDER_REFUSED', 403, 'This cross-border transfer is not allowed'),
  /** 403: public disclosure without express consent, active choice or a 3.3.2 decision (policy 3.3). */
  disclosureRefused: defineError('PIPP_DISCLOSURE_REFUSED', 403, 'Public disclosure is not allowed'),
  /** 422: the recipient may not receive this (not registered for the purpose or category, suspended; policy 3.1, 1.2). */
  recipientIneligible: defineError('PIPP_RECIPIENT_INELIGIBLE', 422, 'The recipient may not receive this data'),
  /** 422: a recipient registration without its attestation or required facts (policy 3.1, 5.3, 1.2). */
  recipientIncomplete: defineError('PIPP_RECIPIENT_INCOMPLETE', 422, 'The recipient registration is incomplete'),
  /** 422: a webhook URL that is not https, not on the allow-list, or points at an internal address. */
  webhookRefused: defineError('PIPP_WEBHOOK_URL_REFUSED', 422, 'The webhook URL is not allowed'),
  /** 422: indirect collection without the source's written confirmations (policy 2.4.2(3)). */
  indirectRefused: defineError('PIPP_INDIRECT_COLLECTION_REFUSED', 422, 'PI from this source cannot be accepted'),
  /** 409: sensitive PI received indirectly is unusable until the subject confirms it (policy 2.4.2(3)). */
  awaitingConfirmation: defineError('PIPP_AWAITING_SUBJECT_CONFIRMATION', 409, 'The subject has not confirmed this sensitive PI'),
  /** 422: data about other people without the supplier's attestation of authorization (policy 2.4.2(1)). */
  attestationRequired: defineError('PIPP_AUTHORIZATION_ATTESTATION_REQUIRED', 422, 'Attest that you are authorized to provide this information'),
  /** 403: a dataset that fails the anonymization check, released without consent or basis (policy 3.4-anonymized). */
  notAnonymous: defineError('PIPP_NOT_ANONYMOUS', 403, 'The dataset is not anonymous'),
  /** 422: a legal basis that does not permit sharing, transfer or disclosure (policy 3.4). */
  basisInadmissible: defineError('PIPP_BASIS_INADMISSIBLE', 422, 'This legal basis does not permit sharing'),
  /** 403: the function was shut down; no new data is collected for it (policy 2.4.2(5)). */
  functionShutDown: defineError('PIPP_FUNCTION_SHUT_DOWN', 403, 'This function has been shut down'),
  /**
   * 410: the data subject's account erasure began; nothing more is recorded about them (policy 4.1,
   * 4.2; PIPL art. 47). Same code and status as the consent service's.
   */
  subjectErased: defineError('PIPP_SUBJECT_ERASED', 410, "This data subject's account was erased: nothing more is recorded about them"),
  /** 401: a recipient's signed call whose signature, timestamp or key does not verify. */
  badSignature: defineError('PIPP_SIGNATURE_INVALID', 401, 'The signature is missing, invalid or too old'),
  /** 409: the record changed meanwhile; retry. */
  conflict: defineError('PIPP_CONFLICT', 409, 'The record changed meanwhile; retry'),
  /** 422: an idempotency key reused for a different request (same caller and subject, another body). */
  idempotencyKeyReused: defineError('PIPP_IDEMPOTENCY_KEY_REUSED', 422, 'This idempotency key was used for a different request'),
};
