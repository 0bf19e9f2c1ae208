import { randomUUID } from 'node:crypto';
import { Type, type TSchema } from '@sinclair/typebox';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { ServiceNameSchema, type ServiceName } from './services.js';
import { eventDefinition, isEventType, type EventEnvelope, type EventPayload, type EventType } from './events/index.js';

// ajv-formats is CommonJS with a default export; under NodeNext its namespace object is what we get.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/** The part of an Ajv instance `representableDateTimes` uses (any Ajv 8: the services' own and this one). */
interface FormatRegistry {
  formats: Record<string, unknown>;
  addFormat(name: string, format: { type: 'string'; validate: (value: string) => boolean }): unknown;
}

/**
 * Narrows the `date-time` format that ajv-formats added to `ajv` to times JavaScript can hold: RFC 3339
 * admits a leap second (`23:59:60Z`), which `new Date()` turns into an Invalid Date, and `toISOString`
 * then throws (a 500 where a 400 is due). Used for events here and for request validation in every
 * service (service kit).
 */
export function representableDateTimes(ajv: FormatRegistry): void {
  const rfc3339 = (ajv.formats['date-time'] as { validate?: unknown } | undefined)?.validate;
  if (typeof rfc3339 !== 'function') throw new Error('representableDateTimes: add ajv-formats first');
  const check = rfc3339 as (value: string) => boolean;
  ajv.addFormat('date-time', { type: 'string', validate: (s: string) => check(s) && Number.isFinite(Date.parse(s)) });
}

const regionNames = new Intl.DisplayNames(['en'], { type: 'region', fallback: 'none' });
/** Two-letter codes Unicode's region data names that are no country or territory (groupings, tests, unknown). */
const NOT_COUNTRIES = new Set(['EU', 'EZ', 'UN', 'QO', 'XA', 'XB', 'ZZ']);

/**
 * True for an ISO 3166-1 alpha-2 code of a country or territory (CN, HK, US, XK …): one that Unicode's
 * region data (ICU, in Node) names, upper case. User-assigned codes (AA, QM–QZ, XA–XZ but XK, ZZ) and
 * groupings (EU, UN) are not: a breaker helper recorded a recipient in "ZZ", a cross-border transfer to
 * nowhere.
 */
export function isCountryCode(code: string): boolean {
  return /^[A-Z]{2}$/.test(code) && !NOT_COUNTRIES.has(code) && regionNames.of(code) !== undefined;
}

/**
 * The formats contracts add to an Ajv that has ajv-formats (the services' own, through the kit, and this
 * one): `date-time` narrowed to times JavaScript can hold (representableDateTimes) and `country-code`
 * (isCountryCode, used by CountryCode).
 */
export function contractFormats(ajv: FormatRegistry): void {
  representableDateTimes(ajv);
  ajv.addFormat('country-code', { type: 'string', validate: isCountryCode });
}

/** One Ajv for every contract, with the standard formats (uuid, date-time, email, uri …). */
export const ajv = new Ajv({ allErrors: true, strict: false, coerceTypes: false, useDefaults: false });
addFormats(ajv);
contractFormats(ajv);

/** Compiles (once, cached by identity) a TypeBox schema into an Ajv validator. */
const compiled = new WeakMap<TSchema, ValidateFunction>();
export function compile(schema: TSchema): ValidateFunction {
  let fn = compiled.get(schema);
  if (!fn) {
    fn = ajv.compile(schema);
    compiled.set(schema, fn);
  }
  return fn;
}

/** Renders Ajv errors as `"/payload/subjectId must be string; …"`. */
export function describeErrors(errors: ErrorObject[] | null | undefined, root = ''): string {
  if (!errors?.length) return 'invalid';
  return errors.slice(0, 5).map((e) => {
    const extra = e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : '';
    return `${root}${e.instancePath || '/'} ${e.message ?? 'is invalid'}${extra}`;
  }).join('; ');
}

const EnvelopeSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  type: Type.String({ minLength: 1, maxLength: 128 }),
  version: Type.Integer({ minimum: 1 }),
  source: ServiceNameSchema,
  occurredAt: Type.String({ format: 'date-time' }),
  subject: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })),
  correlationId: Type.String({ minLength: 1, maxLength: 128 }),
  payload: Type.Unknown(),
}, { additionalProperties: false });

/** Thrown when an event about to be produced does not match its schema (a programming error). */
export class EventValidationError extends Error {
  override readonly name = 'EventValidationError';
  constructor(readonly eventType: string, readonly reason: string) {
    super(`event ${eventType} is invalid: ${reason}`);
  }
}

/**
 * Builds a validated envelope for an event type at its current version. Producers call this before
 * writing to their outbox, so nothing invalid is ever published.
 * @throws EventValidationError when the payload does not match the type's schema.
 */
export function createEvent<T extends EventType>(type: T, init: {
  source: ServiceName;
  payload: EventPayload<T>;
  subject?: string;
  correlationId?: string;
  id?: string;
  occurredAt?: Date;
}): EventEnvelope<T> {
  const id = init.id ?? randomUUID();
  const envelope: EventEnvelope<T> = {
    id,
    type,
    version: eventDefinition(type).version,
    source: init.source,
    occurredAt: (init.occurredAt ?? new Date()).toISOString(),
    ...(init.subject === undefined ? {} : { subject: init.subject }),
    correlationId: init.correlationId ?? id,
    payload: init.payload,
  };
  const checkEnvelope = compile(EnvelopeSchema);
  if (!checkEnvelope(envelope)) throw new EventValidationError(type, describeErrors(checkEnvelope.errors));
  const checkPayload = compile(eventDefinition(type).payload);
  if (!checkPayload(envelope.payload)) throw new EventValidationError(type, describeErrors(checkPayload.errors, '/payload'));
  return envelope;
}

export type ParseResult =
  | { ok: true; event: EventEnvelope }
  | { ok: false; reason: string; type?: string };

/**
 * Parses and validates a consumed message value: JSON, the envelope, a known type, a known version
 * (older versions are upcast to the current one), then the payload schema. Never throws.
 */
export function parseEvent(value: Buffer | string | null | undefined): ParseResult {
  if (value === null || value === undefined) return { ok: false, reason: 'message has no value' };
  let raw: unknown;
  try {
    raw = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
  } catch (err) {
    return { ok: false, reason: `value is not JSON: ${(err as Error).message}` };
  }
  const checkEnvelope = compile(EnvelopeSchema);
  if (!checkEnvelope(raw)) return { ok: false, reason: `bad envelope: ${describeErrors(checkEnvelope.errors)}` };
  const env = raw as EventEnvelope & { type: string };
  if (!isEventType(env.type)) return { ok: false, reason: `unknown event type ${env.type}`, type: env.type };
  const def = eventDefinition(env.type);
  if (env.version > def.version) {
    return { ok: false, reason: `version ${env.version} of ${env.type} is newer than this consumer knows (${def.version})`, type: env.type };
  }
  let payload: unknown = env.payload;
  for (let v = env.version; v < def.version; v += 1) {
    const up = def.upcasters?.[v];
    if (!up) return { ok: false, reason: `no upcaster for ${env.type} v${v}`, type: env.type };
    payload = up(payload);
  }
  const checkPayload = compile(def.payload);
  if (!checkPayload(payload)) {
    return { ok: false, reason: `bad payload: ${describeErrors(checkPayload.errors, '/payload')}`, type: env.type };
  }
  return { ok: true, event: { ...env, version: def.version, payload } as EventEnvelope };
}
