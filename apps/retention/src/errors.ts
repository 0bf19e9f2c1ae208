import { defineError } from '@pipp/service-kit';

/**
 * The retention service's error codes (one JSON shape, kit `defineError`). Refusals carry the policy
 * clause behind them (`clause`).
 */
export const RetentionErrors = {
  /** 404: no erasure request with this id (for this subject). */
  requestNotFound: defineError('PIPP_ERASURE_REQUEST_NOT_FOUND', 404, 'No such erasure request'),
  /** 400: the ground does not fit who asks (policy 4.1, 4.2, 5.1, 2.4.2(5)). */
  groundNotAdmissible: defineError('PIPP_ERASURE_GROUND_NOT_ADMISSIBLE', 400, 'This ground cannot be invoked here'),
  /** 403: a field only staff may set. */
  staffOnly: defineError('PIPP_STAFF_ONLY', 403, 'Only staff may set this'),
  /** 409: an operator retry that cannot happen (completed, unknown participant, closed request). */
  notRetryable: defineError('PIPP_ERASURE_NOT_RETRYABLE', 409, 'Nothing to retry'),
  /** 404: no retention policy with this id. */
  policyNotFound: defineError('PIPP_RETENTION_POLICY_NOT_FOUND', 404, 'No such retention policy'),
  /** 409: the policy changed since the version the editor read (optimistic concurrency). */
  policyVersionConflict: defineError('PIPP_RETENTION_POLICY_VERSION_CONFLICT', 409, 'The policy changed meanwhile; reload it'),
  /** 400: a policy that breaks policy 5.2 (e.g. 5.2.3 without the law cited). */
  policyInvalid: defineError('PIPP_RETENTION_POLICY_INVALID', 400, 'The retention policy is invalid'),
  /** 409: the general policy of a category cannot be deleted, only edited. */
  policyRequired: defineError('PIPP_RETENTION_POLICY_REQUIRED', 409, 'Every category keeps a general retention policy'),
  holdNotFound: defineError('PIPP_LEGAL_HOLD_NOT_FOUND', 404, 'No such legal hold'),
  holdReleased: defineError('PIPP_LEGAL_HOLD_RELEASED', 409, 'The legal hold is already released'),
  backupNotFound: defineError('PIPP_BACKUP_NOT_FOUND', 404, 'No such backup generation'),
  backupExpired: defineError('PIPP_BACKUP_EXPIRED', 409, 'The backup generation has expired and must not be restored'),
  restoreNotFound: defineError('PIPP_RESTORE_NOT_FOUND', 404, 'No such restore'),
  sweepNotFound: defineError('PIPP_SWEEP_NOT_FOUND', 404, 'No such sweep'),
  shutdownNotFound: defineError('PIPP_SHUTDOWN_NOT_FOUND', 404, 'No such shutdown'),
  /** 409: the function is already shut down (policy 2.4.2(5)). */
  /** 404: the consent catalogue has no active function by that id (2.4.2(5)). */
  functionUnknown: defineError('PIPP_FUNCTION_UNKNOWN', 404, 'The catalogue has no such active function'),
  /** 422: a shutdown names data categories its function does not collect (2.4.2(5)). */
  shutdownInvalid: defineError('PIPP_SHUTDOWN_INVALID', 422, 'The shutdown does not match its function'),
  alreadyShutDown: defineError('PIPP_FUNCTION_ALREADY_SHUT_DOWN', 409, 'This function is already shut down'),
  /** 400: a time that must lie in the future (or past) does not. */
  badTime: defineError('PIPP_BAD_TIME', 400, 'The time is not acceptable'),
};
