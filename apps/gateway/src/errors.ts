import { defineError } from '@pipp/service-kit';

/**
 * The gateway's own error codes (the shared ones are in the kit's `Errors`). Every answer has the one
 * error shape (contracts `ErrorResponseSchema`).
 */
export const GatewayErrors = {
  /** 400: the path is malformed (dot segments, encoded slashes, bad percent-encoding …). */
  badPath: defineError('PIPP_BAD_PATH', 400, 'The request path is malformed'),
  /**
   * 400: staff or a service reach a data subject's data without stating why (X-PIPP-Purpose); the
   * purpose is recorded in the audit trail (PIPL art. 6 purpose limitation, policy 5.4).
   */
  purposeRequired: defineError('PIPP_PURPOSE_REQUIRED', 400, "State the purpose of reaching this data subject's data in X-PIPP-Purpose"),
  /** 403 (as the services answer): the function this route collects data for was shut down (policy 2.4.2(5)). */
  functionShutDown: defineError('PIPP_FUNCTION_SHUT_DOWN', 403, 'This function has stopped operating and no longer collects data'),
};
