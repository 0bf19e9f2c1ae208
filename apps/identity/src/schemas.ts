import { ErrorResponseSchema } from '@pipp/contracts';
import { Type } from '@sinclair/typebox';

/** A mobile number as typed (`+86 138 0013 8000`, `0086…`, `138…`, full-width); normalized to E.164. */
export const PhoneInput = Type.String({ minLength: 1, maxLength: 40, description: 'Mobile phone number as typed; stored in E.164' });
/** A 6-digit one-time code. */
export const CodeInput = Type.String({ pattern: '^[0-9]{6}$', description: 'One-time code (6 digits)' });
/** A password exactly as typed (up to 1024 characters; never trimmed or truncated). */
export const PasswordInput = Type.String({ minLength: 1, maxLength: 1024 });
/** A client-generated device id (random per installation), used only for account security (2.4.1(3)). */
export const DeviceIdInput = Type.String({ minLength: 8, maxLength: 128, pattern: '^[A-Za-z0-9_.:-]+$' });
export const SubjectIdParam = Type.Object({ subjectId: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }) }, { additionalProperties: false });

/** The token response of sign-in, registration and refresh. */
export const TokenPairSchema = Type.Object({
  accessToken: Type.String(),
  refreshToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'Access-token lifetime (s)' }),
  sessionId: Type.String(),
  subjectId: Type.String(),
  role: Type.String(),
}, { additionalProperties: false });

/** Sign-in accepted the password but the risk score demands a one-time code (policy 2.4.1(3)). */
export const ChallengeSchema = Type.Object({
  status: Type.Literal('verification-required'),
  challengeId: Type.String(),
  method: Type.Literal('sms-code'),
  expiresIn: Type.Integer({ description: 'Seconds the challenge stays open' }),
  reasons: Type.Array(Type.String()),
}, { additionalProperties: false });

/** Error responses by status, for route schemas. */
export function errors(...statuses: number[]) {
  return Object.fromEntries(statuses.map((s) => [s, ErrorResponseSchema]));
}
