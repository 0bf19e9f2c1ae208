import { defineError } from '@pipp/service-kit';

/**
 * The identity service's error codes (one JSON error shape, see the kit). Messages are what the client
 * sees: they say what to do, never which numbers have accounts.
 */
export const IdentityErrors = {
  /** 400: the phone number cannot be parsed or is not an allowed mobile number (policy 2.4.1(1)i). */
  invalidPhone: defineError('PIPP_INVALID_PHONE', 400, 'This is not a valid mobile phone number'),
  /** 400: wrong, expired, used or dead one-time code. Same answer for every number. */
  invalidCode: defineError('PIPP_INVALID_CODE', 400, 'The code is wrong or no longer valid; request a new one'),
  /** 401: sign-in failed: wrong number, password or code, or a locked account (indistinguishable). */
  signInFailed: defineError('PIPP_SIGN_IN_FAILED', 401, 'The phone number, password or code is wrong'),
  /** 401: a refresh token that is unknown, expired, revoked or reused. */
  invalidRefresh: defineError('PIPP_INVALID_REFRESH_TOKEN', 401, 'The refresh token is invalid; sign in again'),
  /** 401: bad client credentials for a service token. */
  invalidClient: defineError('PIPP_INVALID_CLIENT', 401, 'Unknown client or wrong secret'),
  /** 429: too many requests from this number or address; Retry-After says when to retry. */
  tooMany: defineError('PIPP_TOO_MANY_REQUESTS', 429, 'Too many attempts; wait and retry'),
  /** 409: the acknowledged policy version is not the current one (policy preamble). */
  stalePolicy: defineError('PIPP_POLICY_VERSION_STALE', 409, 'Read and acknowledge the current privacy policy'),
  /** 409: the number already has an account (only said after the caller proved they hold it). */
  alreadyRegistered: defineError('PIPP_ALREADY_REGISTERED', 409, 'This number already has an account; sign in instead'),
  /** 400: the new password is too weak (policy 5.4.1). */
  weakPassword: defineError('PIPP_WEAK_PASSWORD', 400, 'The password is too easy to guess'),
  /** 409: required data cannot be removed except by closing the account (policy 2.4.1(1)i, 4.1). */
  requiredData: defineError('PIPP_REQUIRED_DATA', 409, 'This information is required for an account'),
  /** 409: the account name is used by someone else. */
  accountNameTaken: defineError('PIPP_ACCOUNT_NAME_TAKEN', 409, 'This account name is taken; choose another'),
  /** 403: re-authentication (password or code) failed or is missing. */
  reauthRequired: defineError('PIPP_REAUTH_REQUIRED', 403, 'Confirm it is you with your password or a code'),
  /** 403: processing needs the subject's consent to a purpose (policy 2.1.2, 2.4.1(2)). */
  consentRequired: defineError('PIPP_CONSENT_REQUIRED', 403, 'This needs your consent'),
  /** 403: the function was shut down (policy 2.4.2(5)): no more data is collected for it. */
  functionShutDown: defineError('PIPP_FUNCTION_SHUT_DOWN', 403, 'This function has been shut down'),
  /** 404 */
  notFound: defineError('PIPP_NOT_FOUND', 404, 'Not found'),
  /** 403 */
  forbidden: defineError('PIPP_FORBIDDEN', 403, 'You may not do this'),
  /** 400 */
  badRequest: defineError('PIPP_BAD_REQUEST', 400, 'The request is invalid'),
};
