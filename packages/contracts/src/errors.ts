import { Type, type Static } from '@sinclair/typebox';

/**
 * The one JSON error shape of every service and the gateway.
 * - `statusCode`, `error`: the HTTP status and its reason phrase;
 * - `code`: a stable machine-readable code (`PIPP_VALIDATION`, `PIPP_CONSENT_REQUIRED` …);
 * - `message`: what went wrong and what to do, safe to show; 5xx messages never carry internals;
 * - `requestId`: to quote to support; matches the `x-request-id` response header and the logs;
 * - `clause`: the policy clause behind a refusal, when there is one (e.g. `3.1.2`);
 * - `details`: per-field validation problems (`path` is a JSON pointer such as `/body/phone`).
 */
export const ErrorResponseSchema = Type.Object({
  statusCode: Type.Integer({ minimum: 400, maximum: 599 }),
  code: Type.String(),
  error: Type.String(),
  message: Type.String(),
  requestId: Type.String(),
  clause: Type.Optional(Type.String()),
  details: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
}, { description: 'Error (one shape across all services)' });
export type ErrorResponse = Static<typeof ErrorResponseSchema>;
