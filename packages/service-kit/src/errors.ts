import createError from '@fastify/error';
import { VISIBLE_TEXT_PATTERN, type ErrorResponse } from '@pipp/contracts';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { STATUS_CODES } from 'node:http';
import { escapeHidden } from './hidden-characters.js';

/** Extra facts an error can carry to the client: the policy clause behind a refusal, field details. */
export interface ErrorExtras {
  clause?: string;
  details?: { path: string; message: string }[];
  /** Seconds; sent as Retry-After (429, 503). */
  retryAfter?: number;
}

export type PippError = FastifyError & ErrorExtras;

/**
 * Declares a coded error (through @fastify/error) and returns a factory for it. Each service keeps
 * its codes in `src/errors.ts`; the message is what the client sees, so make it actionable.
 * @example const ConsentRequired = defineError('PIPP_CONSENT_REQUIRED', 403, 'Consent is required');
 *          throw ConsentRequired('sharing with this recipient needs your consent', { clause: '3.1.2' });
 */
export function defineError(code: string, statusCode: number, defaultMessage: string) {
  const Ctor = createError(code, '%s', statusCode);
  const factory = (message: string = defaultMessage, extras: ErrorExtras = {}): PippError => {
    const err = new Ctor(message) as PippError;
    Object.assign(err, extras);
    return err;
  };
  factory.code = code;
  factory.statusCode = statusCode;
  return factory;
}

/** Codes shared by every service. */
export const Errors = {
  validation: defineError('PIPP_VALIDATION', 400, 'The request is invalid'),
  badRequest: defineError('PIPP_BAD_REQUEST', 400, 'The request is invalid'),
  unauthorized: defineError('PIPP_UNAUTHORIZED', 401, 'Authentication is required'),
  forbidden: defineError('PIPP_FORBIDDEN', 403, 'You may not do this'),
  notFound: defineError('PIPP_NOT_FOUND', 404, 'Not found'),
  conflict: defineError('PIPP_CONFLICT', 409, 'The request conflicts with the current state'),
  payloadTooLarge: defineError('PIPP_PAYLOAD_TOO_LARGE', 413, 'The request body is too large'),
  unsupportedMediaType: defineError('PIPP_UNSUPPORTED_MEDIA_TYPE', 415, 'Unsupported content type'),
  tooManyRequests: defineError('PIPP_TOO_MANY_REQUESTS', 429, 'Too many requests'),
  unavailable: defineError('PIPP_UNAVAILABLE', 503, 'The service is temporarily unavailable'),
  internal: defineError('PIPP_INTERNAL', 500, 'Internal error'),
};

const MONGO_UNAVAILABLE = new Set(['MongoServerSelectionError', 'MongoNetworkError', 'MongoNetworkTimeoutError', 'MongoNotConnectedError', 'MongoTopologyClosedError']);

/** Fastify's own 4xx codes mapped to ours, with a message a client can act on. */
const FASTIFY_CODES: Record<string, [string, (e: FastifyError) => string]> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['PIPP_UNSUPPORTED_MEDIA_TYPE', () => 'Unsupported content type; send application/json'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['PIPP_BAD_REQUEST', () => 'Content-Length does not match the body'],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['PIPP_VALIDATION', () => 'The JSON body is empty'],
  FST_ERR_CTP_INVALID_JSON_BODY: ['PIPP_VALIDATION', () => 'The body is not valid JSON'],
  FST_ERR_CTP_BODY_TOO_LARGE: ['PIPP_PAYLOAD_TOO_LARGE', () => 'The request body is too large'],
  FST_ERR_CTP_INVALID_TYPE: ['PIPP_UNSUPPORTED_MEDIA_TYPE', () => 'The Content-Type header is invalid'],
};

const CODE_BY_STATUS: Record<number, string> = {
  400: 'PIPP_BAD_REQUEST', 401: 'PIPP_UNAUTHORIZED', 403: 'PIPP_FORBIDDEN', 404: 'PIPP_NOT_FOUND', 405: 'PIPP_METHOD_NOT_ALLOWED',
  406: 'PIPP_NOT_ACCEPTABLE', 409: 'PIPP_CONFLICT', 413: 'PIPP_PAYLOAD_TOO_LARGE', 415: 'PIPP_UNSUPPORTED_MEDIA_TYPE', 429: 'PIPP_TOO_MANY_REQUESTS',
};

/** Statuses a proxy (the gateway) answers for an upstream, with fixed messages that carry no internals. */
const UPSTREAM_5XX: Record<number, [string, string]> = {
  502: ['PIPP_BAD_GATEWAY', 'An upstream service gave an invalid answer; retry shortly'],
  504: ['PIPP_UPSTREAM_TIMEOUT', 'An upstream service did not answer in time; retry shortly'],
};

function toResponse(err: PippError, request: FastifyRequest): ErrorResponse & { retryAfter?: number } {
  const requestId = String(request.id);
  // Schema validation errors: say which field and why.
  if (err.validation) {
    const part = err.validationContext ?? 'body';
    // A union of literals fails once per literal ("must be equal to constant") and once as a whole
    // ("must match a schema in anyOf"): said once, with the values it admits (the schema's, never the input).
    const allowed = new Map<string, unknown[]>();
    for (const v of err.validation) {
      if (v.keyword === 'const') allowed.set(v.instancePath ?? '', [...(allowed.get(v.instancePath ?? '') ?? []), (v.params as { allowedValue?: unknown }).allowedValue]);
    }
    const byLine = new Map<string, { path: string; message: string }>();
    for (const v of err.validation) {
      const at = v.instancePath ?? '';
      const values = allowed.get(at);
      if (v.keyword === 'const' && values && values.length > 1) continue;
      const extra = v.keyword === 'additionalProperties' ? ` (${escapeHidden(String((v.params as { additionalProperty?: string }).additionalProperty))})` : '';
      const message = values && (v.keyword === 'anyOf' || v.keyword === 'const')
        ? (values.length > 1 ? `must be one of: ${values.map(String).join(', ')}` : `must be ${String(values[0])}`)
        : v.keyword === 'pattern' && (v.params as { pattern?: string }).pattern === VISIBLE_TEXT_PATTERN
          ? 'must show something: not only spaces or invisible characters'
          : `${v.message ?? 'is invalid'}${extra}`;
      const path = `/${part}${at}`;
      byLine.set(`${path} ${message}`, { path, message });
    }
    const details = [...byLine.values()];
    return {
      statusCode: 400, code: 'PIPP_VALIDATION', error: 'Bad Request', requestId,
      message: details.map((d) => `${d.path} ${d.message}`).join('; '), details,
    };
  }
  if (MONGO_UNAVAILABLE.has(err.name) || err.code === 'PIPP_UNAVAILABLE') {
    return { statusCode: 503, code: 'PIPP_UNAVAILABLE', error: STATUS_CODES[503] ?? 'Service Unavailable', requestId,
      message: 'The service is temporarily unavailable; retry shortly', retryAfter: err.retryAfter ?? 2 };
  }
  // Safety nets for bad input that slipped past a schema: never a 500, never the value in the message.
  if (err.name === 'CastError' || err.name === 'ValidationError') {
    const path = (err as unknown as { path?: string }).path;
    return { statusCode: 400, code: 'PIPP_VALIDATION', error: 'Bad Request', requestId,
      message: path ? `${path} is invalid` : 'The request is invalid' };
  }
  if ((err as unknown as { code?: unknown }).code === 11000) {
    return { statusCode: 409, code: 'PIPP_CONFLICT', error: 'Conflict', requestId, message: 'A record with these values already exists' };
  }
  const status = err.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    const mapped = FASTIFY_CODES[err.code];
    let code = mapped?.[0] ?? err.code ?? '';
    let message = mapped ? mapped[1](err) : err.message;
    if (code.startsWith('FST_JWT_') || code.startsWith('FAST_JWT_')) {
      code = 'PIPP_UNAUTHORIZED';
      message = 'The access token is missing, invalid or expired';
    } else if (!code.startsWith('PIPP_')) {
      code = CODE_BY_STATUS[status] ?? 'PIPP_BAD_REQUEST';
    }
    return {
      statusCode: status, code, error: STATUS_CODES[status] ?? 'Error', message, requestId,
      ...(err.clause ? { clause: err.clause } : {}),
      ...(err.details ? { details: err.details } : {}),
      ...(err.retryAfter ? { retryAfter: err.retryAfter } : {}),
    };
  }
  const upstream = UPSTREAM_5XX[status];
  return {
    statusCode: status >= 500 && status < 600 ? status : 500,
    code: status === 503 ? 'PIPP_UNAVAILABLE' : upstream?.[0] ?? 'PIPP_INTERNAL',
    error: STATUS_CODES[status] ?? 'Internal Server Error',
    message: status === 503 ? 'The service is temporarily unavailable; retry shortly' : upstream?.[1] ?? 'Internal error; quote the request id to support',
    requestId,
    ...(err.retryAfter ? { retryAfter: err.retryAfter } : {}),
  };
}

/** Sends the one error shape. Usable from hooks that answer early (auth, rate limits). */
export function sendError(reply: FastifyReply, err: PippError): FastifyReply {
  const { retryAfter, ...body } = toResponse(err, reply.request);
  if (retryAfter) void reply.header('retry-after', String(retryAfter));
  // The code in a header too: the gateway's audit trail records it without reading a service's body.
  void reply.header('x-pipp-error-code', body.code);
  return reply.code(body.statusCode).type('application/json; charset=utf-8').send(body);
}

/**
 * One error handler and not-found handler for the whole app: 4xx errors keep their code and message,
 * validation errors list each field, database outages become 503 with Retry-After, and any other
 * error becomes a 500 whose message carries no internals (the log has the details).
 */
export const errorHandlerPlugin = fp(async function errorHandler(app: FastifyInstance) {
  app.setErrorHandler((error: PippError, request, reply) => {
    const status = error.validation ? 400 : error.statusCode ?? 500;
    if (status >= 500 && !MONGO_UNAVAILABLE.has(error.name)) request.log.error({ err: error }, 'request failed');
    else request.log.info({ err: error }, 'request refused');
    return sendError(reply, error);
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, Errors.notFound(`Route ${request.method} ${request.url.split('?')[0]} not found`)));
}, { name: 'pipp-errors' });
