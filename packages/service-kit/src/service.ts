import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { contractFormats, type EventType, type ServiceName } from '@pipp/contracts';
import type { TObject, Static } from '@sinclair/typebox';
import AjvCompiler from '@fastify/ajv-compiler';
import closeWithGrace from 'close-with-grace';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ConfigError, loadConfig, type BaseConfig } from './config.js';
import { errorHandlerPlugin, Errors, sendError } from './errors.js';
import { unacceptableValue } from './hidden-characters.js';
import { lazyChildLogger } from './lazy-logger.js';
import { loggerOptions, scrub } from './logger.js';
import { Outbox } from './outbox.js';
import { authPlugin, type AuthOptions } from './plugins/auth.js';
import { healthPlugin } from './plugins/health.js';
import { kafkaPlugin } from './plugins/kafka.js';
import { mongoPlugin } from './plugins/mongo.js';
import { openApiPlugin, type OpenApiOptions } from './plugins/openapi.js';
import { residencyPlugin, residencyRefusal } from './residency.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Writes state and the events announcing it in one document; see Outbox. */
    outbox: Outbox;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** True when `text` percent-decodes (every `%` starts a valid UTF-8 escape). */
function decodable(text: string): boolean {
  try {
    decodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}

const validators = AjvCompiler();
/**
 * Fastify's own validator (ajv through @fastify/ajv-compiler), with type coercion only where the
 * values arrive as text: query strings, path parameters and headers. A JSON body has types, and is
 * validated as sent: coerced, `false` or `0` became `null` and removed a nullable field, `["x"]`
 * passed where a string was due (then a 500), and `123` was stored as "123".
 */
const strictBodies: typeof validators = (externalSchemas, options) => {
  const lenient = validators(externalSchemas, options);
  const ajvOptions = (options ?? {}) as { customOptions?: AjvCompiler.Options };
  const strict = validators(externalSchemas, { ...ajvOptions, customOptions: { ...ajvOptions.customOptions, coerceTypes: false } });
  return (route) => (route.httpPart === 'body' ? strict(route) : decimalIntegers(route.schema, lenient(route) as Validate) as ReturnType<typeof lenient>);
};

/** An integer as a path or query string may write it: decimal digits, optionally signed. */
const DECIMAL = /^-?\d{1,16}$/;
type Validate = ((data: unknown, ctx?: unknown) => unknown) & { errors?: unknown; schemaEnv?: unknown };

/**
 * Path and query parameters the schema types as integers must be written in decimal digits: Ajv's
 * coercion took `0x10` as 16, `1e3` as 1000 and `1.0` as 1 (a fresh-clone trial read version 16 of a
 * policy through `versions/0x10`). Wraps the validator only where such a parameter exists.
 */
function decimalIntegers(schema: unknown, validate: Validate): Validate {
  const properties = (schema as { properties?: Record<string, { type?: unknown; items?: { type?: unknown } }> } | undefined)?.properties ?? {};
  const integers = Object.entries(properties).filter(([, p]) => p.type === 'integer' || p.items?.type === 'integer').map(([name]) => name);
  if (!integers.length) return validate;
  const wrapped: Validate = (data, ctx) => {
    for (const name of integers) {
      const raw = (data as Record<string, unknown> | null)?.[name];
      if ([raw].flat().some((v) => typeof v === 'string' && !DECIMAL.test(v))) {
        wrapped.errors = [{ instancePath: `/${name}`, schemaPath: '#/properties', keyword: 'type', params: { type: 'integer' }, message: 'must be an integer written in decimal digits' }];
        return false;
      }
    }
    const ok = validate(data, ctx);
    wrapped.errors = validate.errors;
    return ok;
  };
  return Object.assign(wrapped, { schema: (validate as { schema?: unknown }).schema, schemaEnv: validate.schemaEnv });
}

/** What a request the HTTP parser refused gets: status, code and message (the one error shape). */
function clientErrorResponse(code: string | undefined): [number, string, string] {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, 'PIPP_REQUEST_TIMEOUT', 'The request was not received in time'];
  if (code === 'HPE_HEADER_OVERFLOW') return [431, 'PIPP_HEADERS_TOO_LARGE', 'The request headers are too large'];
  return [400, 'PIPP_BAD_REQUEST', 'The request is not valid HTTP/1.1'];
}

/**
 * Answers what Node's HTTP parser refuses before Fastify sees a request (a malformed request line,
 * headers too large, Content-Length with Transfer-Encoding, a request not received in time) in the
 * one error shape, then closes the connection, as Fastify's own handler does with a shape of its own.
 */
function clientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: Socket) {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [statusCode, code, message] = clientErrorResponse(err.code);
  const requestId = randomUUID();
  const body = JSON.stringify({ statusCode, code, error: STATUS_CODES[statusCode], message, requestId });
  this.log.debug({ err, requestId }, 'request refused by the HTTP parser');
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nx-pipp-error-code: ${code}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(err);
}

/** A Fastify instance with the TypeBox type provider: what every service builds on. */
export type App = ReturnType<typeof createFastify>;

/**
 * Creates a service's Fastify instance: pino with PI redaction, request ids (an incoming
 * `x-request-id` is kept when well-formed and echoed back), strict body validation (unknown
 * properties rejected, `__proto__`/`constructor` keys refused), bounded bodies, and 503 while closing.
 */
export function createFastify(opts: {
  service: ServiceName;
  config: BaseConfig;
  bodyLimit?: number;
  trustProxy?: boolean | string | string[];
  /** Bound on receiving a whole request (ms); default `REQUEST_TIMEOUT_MS`. */
  requestTimeoutMs?: number;
}) {
  const requestTimeout = opts.requestTimeoutMs ?? opts.config.REQUEST_TIMEOUT_MS;
  const app = Fastify({
    logger: loggerOptions(opts.service, opts.config.LOG_LEVEL, opts.config.LOG_FORMAT),
    requestIdHeader: false,
    logController: new LogController({ requestIdLogLabel: 'requestId' }),
    // A request's logger is built only when the request logs at an enabled level (see lazyChildLogger).
    childLoggerFactory: lazyChildLogger,
    genReqId: (req) => {
      const incoming = req.headers['x-request-id'];
      // Kept only when well-formed and not shaped like PI (it is on every log line): a client could send a phone number.
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) && scrub(incoming) === incoming ? incoming : randomUUID();
    },
    bodyLimit: opts.bodyLimit ?? 256 * 1024,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
    clientErrorHandler,
    forceCloseConnections: 'idle',
    // A client that never finishes sending its request is answered 408 and cut off (slow-request
    // attacks; the gateway has its own upstream timeout). Given to the HTTP server's constructor, with
    // Node's deadline check every second: by default Node checks every 30 s, so a bound of a few
    // seconds fired up to 30 s late (found by the tests of this bound).
    requestTimeout,
    // requireHostHeader off: Node's own answer to an HTTP/1.1 request without Host is a bare 400; the
    // onRequest hook below refuses it in the one error shape instead.
    http: { requestTimeout, headersTimeout: Math.min(requestTimeout, 60_000), connectionsCheckingInterval: 1000, requireHostHeader: false },
    trustProxy: opts.trustProxy ?? false,
    // A URL Fastify cannot decode (bad percent-encoding) gets the one error shape too, not Fastify's own.
    frameworkErrors: (error, request, reply) => {
      void reply.header('x-request-id', request.id);
      return sendError(reply, Errors.badRequest(error.code === 'FST_ERR_BAD_URL' ? 'The URL is malformed (invalid percent-encoding)' : 'The request is malformed'));
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: true }, onCreate: contractFormats },
    schemaController: { compilersFactory: { buildValidator: strictBodies } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  // Callback-style hooks (not async) on every request: no promise and microtask per hook.
  app.addHook('onRequest', (request, reply, done) => {
    void reply.header('x-request-id', request.id);
    if (request.headers.host === undefined && request.raw.httpVersion === '1.1') {
      void reply.header('connection', 'close'); // as for the parser's refusals: the connection ends
      return done(Errors.badRequest('An HTTP/1.1 request needs a Host header'));
    }
    // A query string that cannot be percent-decoded is a 400, as a path that cannot be is (frameworkErrors):
    // services read `%FF` literally, and the gateway's proxy threw on it (a 500).
    const url = request.raw.url ?? '';
    const q = url.indexOf('?');
    if (q !== -1 && url.includes('%', q) && !decodable(url.slice(q + 1))) {
      return done(Errors.validation('The URL is malformed (invalid percent-encoding in the query string)', { details: [{ path: '/querystring', message: 'has invalid percent-encoding' }] }));
    }
    done();
  });
  // No field of any body or query string carries control characters, direction overrides, unpaired
  // surrogates or numbers JSON cannot carry (see unacceptableValue); after validation, so a caller
  // without a token still gets 401.
  app.addHook('preHandler', (request, _reply, done) => {
    const bad = unacceptableValue(request.body, '/body') ?? unacceptableValue(request.query, '/querystring');
    if (!bad) return done();
    done(Errors.validation(`${bad.path} ${bad.message}`, { details: [bad] }));
  });
  // When closing starts, the answers still to be sent carry `Connection: close`, so a keep-alive client
  // does not hold the server open after its in-flight request (Fastify keeps idle connections 72 s;
  // new requests get 503 from Fastify itself). Connections are tracked as they open, not per request:
  // nothing runs on a request's path for this (an onSend hook did, on every request).
  const connections = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });
  app.addHook('preClose', async () => {
    for (const socket of connections) {
      // Node's response in progress on this connection (http's own link from socket to response).
      const response = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
      if (response && !response.headersSent) response.shouldKeepAlive = false;
    }
  });
  return app;
}

export interface InfrastructureOptions {
  service: ServiceName;
  config: BaseConfig & { AUTH_JWKS_URL?: string };
  /** Event types produced or consumed: their topics and dead-letter topics are created at start-up. */
  topics: EventType[];
  /** Connect MongoDB (default true; the gateway is stateless). */
  mongo?: boolean;
  /** Token verification; `false` to skip (nothing but health routes then). */
  auth?: Partial<AuthOptions> | false;
  /** OpenAPI document generated from the route schemas (registered before the service's routes). */
  openapi?: OpenApiOptions;
  /** Declare where the stores are at start-up (policy 5.3; default true). */
  residency?: boolean;
}

/**
 * Registers what every service has, in order: error handling, the OpenAPI generator, MongoDB, Kafka,
 * the outbox relay, the data-residency declaration (policy 5.3), token verification and health routes.
 * Decorates `app.mongo`, `app.kafka`, `app.outbox`, `app.residency`, `app.authenticate`,
 * `app.requireRole`, `app.requireSubject`, `app.revocations`.
 */
export const infrastructurePlugin = fp(async function infrastructure(app: FastifyInstance, opts: InfrastructureOptions) {
  const { config } = opts;
  const refusal = opts.residency === false ? undefined : residencyRefusal(opts.service, config, { mongo: opts.mongo !== false });
  if (refusal) throw new ConfigError([{ variable: 'DATA_LOCATION', message: refusal }]);
  await app.register(errorHandlerPlugin);
  if (opts.openapi) await app.register(openApiPlugin, opts.openapi);
  if (opts.mongo !== false) await app.register(mongoPlugin, { url: config.MONGO_URL, dbName: config.MONGO_DB });
  await app.register(kafkaPlugin, {
    service: opts.service,
    brokers: config.KAFKA_BROKERS.split(','),
    topicPrefix: config.KAFKA_TOPIC_PREFIX,
    partitions: config.KAFKA_PARTITIONS,
    replicationFactor: config.KAFKA_REPLICATION_FACTOR,
    topics: opts.residency === false ? opts.topics : [...new Set<EventType>([...opts.topics, 'privacy.residency.declared'])],
    consumerDefaults: { maxAttempts: config.CONSUMER_MAX_ATTEMPTS, backoffMs: config.CONSUMER_BACKOFF_MS },
  });
  if (opts.mongo !== false) {
    const outbox = new Outbox({
      connection: app.mongo.connection,
      producer: app.kafka.producer,
      source: opts.service,
      topicPrefix: config.KAFKA_TOPIC_PREFIX,
      log: app.log.child({ component: 'outbox' }),
      pollMs: config.OUTBOX_POLL_MS,
      sweepMs: config.OUTBOX_SWEEP_MS,
      locks: app.mongo.locks,
      readOneByOne: app.mongo.ferretdb,
    });
    app.decorate('outbox', outbox);
    app.addHook('onReady', async () => outbox.start());
    // Consumers first (their last messages may write events), then the outbox's last drain, then
    // (in the Kafka plugin's own hook, which runs after this one) the producer.
    app.addHook('onClose', async () => {
      await app.kafka.stopConsumers();
      await outbox.stop();
    });
  }
  if (opts.residency !== false) await app.register(residencyPlugin, { service: opts.service, config, mongo: opts.mongo !== false });
  if (opts.auth !== false) {
    await app.register(authPlugin, {
      issuer: config.AUTH_ISSUER,
      audience: config.AUTH_AUDIENCE,
      ...(config.AUTH_JWKS_URL ? { jwksUrl: config.AUTH_JWKS_URL } : {}),
      ...(opts.auth ?? {}),
    });
  }
  await app.register(healthPlugin);
}, { name: 'pipp-infrastructure' });

const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
const REPEATED_SIGNAL_MS = 2000;

/**
 * Starts a service from its server.ts: reads the config (a bad one, or stores that break policy 5.3,
 * stop the process with exit code 1 and a message naming each variable), builds the app, listens, and on SIGTERM/SIGINT closes it
 * within SHUTDOWN_TIMEOUT_MS: stop accepting, finish in-flight requests and messages, commit offsets,
 * disconnect. A crash (uncaught exception) also closes and exits non-zero. A second stop signal
 * within 2 s is the same stop delivered twice and is ignored; a later one exits at once.
 */
export async function runServer<S extends TObject>(opts: {
  service: ServiceName;
  schema: S;
  build: (config: Static<S>) => Promise<FastifyInstance>;
}): Promise<FastifyInstance> {
  let config: Static<S> & BaseConfig;
  let app: FastifyInstance;
  try {
    config = loadConfig(opts.schema) as Static<S> & BaseConfig;
    app = await opts.build(config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${opts.service}: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const grace = closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT_MS, skip: [...STOP_SIGNALS] }, async ({ err }) => {
    if (err) app.log.error({ err }, 'crashed; closing');
    await app.close();
  });
  // Our own handling of the stop signals: a repeat within REPEATED_SIGNAL_MS is the same stop delivered
  // twice (Ctrl-C reaches the whole process group, and a watcher such as `tsx watch` under `make dev`
  // forwards it again), so it does not cut the graceful close short; a later one does (exit 1).
  let stoppingSince = 0;
  const onStop = (signal: NodeJS.Signals) => {
    if (!stoppingSince) {
      stoppingSince = Date.now();
      app.log.info({ signal }, 'shutting down');
      void grace.close();
    } else if (Date.now() - stoppingSince > REPEATED_SIGNAL_MS) {
      app.log.error({ signal }, 'second stop signal; exiting now');
      process.exit(1);
    }
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onStop);
  await app.listen({ host: config.HOST, port: config.PORT });
  return app;
}
