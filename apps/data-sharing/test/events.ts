// Event helpers for tests: the contracts' envelope builder and types, and the signature header name.
export { createEvent, type EventPayload } from '@pipp/contracts';
export { SIGNATURE_HEADER as signatureHeaderName } from '../src/domain/signature.js';
