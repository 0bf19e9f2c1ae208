import { Type, type IntegerOptions, type StringOptions } from '@sinclair/typebox';

/**
 * Id of a data subject (issued by the identity service). Opaque; letters, digits, '-' and '_'.
 * Never a phone number or other PI, so it may appear in logs, topics keys and audit records.
 */
export const SubjectId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: 'Data subject id (opaque, not PI)' });

/** An opaque id of a record (request, report, recipient …). */
export const RecordId = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:-]+$' });

/**
 * The pattern of VisibleText: at least one character that shows (JSON Schema patterns match anywhere;
 * compiled with the `u` flag): not a space, a format character (zero-width space, joiners …), a
 * combining mark on its own, or a blank-looking letter (Hangul fillers, the blank Braille pattern).
 * The services' error shape turns its failure into plain words.
 */
export const VISIBLE_TEXT_PATTERN = '[^\\s\\p{Z}\\p{Cf}\\p{M}\\u115f\\u1160\\u2800\\u3164\\uffa0]';

/**
 * Text a person reads (a name, a title, an evidence reference, a notice): 1 to `maxLength` characters, at
 * least one of them visible, so not only spaces or zero-width characters. A breaker helper recorded a
 * sensitive share on the evidence "\u200b" and a recipient named "   ". (Control characters, direction
 * overrides and unpaired surrogates are refused in every field by the services' kit.)
 */
export const VisibleText = (maxLength: number, options: StringOptions = {}) =>
  Type.String({ minLength: 1, maxLength, pattern: VISIBLE_TEXT_PATTERN, ...options });

/**
 * An integer a request may carry (a version, a revision, a sequence number): at most 2^53 − 1, the
 * largest JavaScript holds exactly. Without a bound, `99999999999999999999999` parsed to 1e23, an
 * "integer", and an answer read "the policy has no version 1e+23".
 */
export const SafeInteger = (options: IntegerOptions = {}) => Type.Integer({ maximum: Number.MAX_SAFE_INTEGER, ...options });

/** ISO 8601 date-time in UTC, e.g. `2026-11-29T10:00:00.000Z`. */
export const Timestamp = Type.String({ format: 'date-time', description: 'ISO 8601 date-time, UTC' });

/** A purpose id, e.g. `personalization` (the consent service owns the catalogue). */
export const PurposeId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9][a-z0-9-]*$' });

/** ISO 3166-1 alpha-2 country or region code, upper case (CN, HK, US …); format `country-code` (isCountryCode). */
export const CountryCode = Type.String({ pattern: '^[A-Z]{2}$', format: 'country-code', description: 'ISO 3166-1 alpha-2 country or region code' });

/** Notification channels of policy 5.4.2: mail (e-mail), letter, telephone, push, plus SMS. */
export const CHANNELS = ['email', 'sms', 'telephone', 'push', 'letter'] as const;
export type Channel = (typeof CHANNELS)[number];
export const ChannelSchema = Type.Union(CHANNELS.map((c) => Type.Literal(c)));

/** Counts a participant reports for an erasure or a sweep. */
export const EffectCounts = Type.Object({
  erased: Type.Integer({ minimum: 0 }),
  anonymized: Type.Integer({ minimum: 0 }),
  kept: Type.Integer({ minimum: 0 }),
}, { additionalProperties: false });
