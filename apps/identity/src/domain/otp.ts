import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';

/** Why a one-time code is sent; a code only verifies the purpose it was issued for. */
export const OTP_PURPOSES = ['register', 'sign-in', 'password-reset', 'step-up', 'reauth', 'phone-change'] as const;
export type OtpPurpose = (typeof OTP_PURPOSES)[number];

/** Code length in digits (policy 2.4.1(1)i identity verification). */
export const OTP_DIGITS = 6;

/** A fresh 6-digit code from the CSPRNG (`crypto.randomInt`, uniform, leading zeros kept). */
export function generateCode(): string {
  return randomInt(0, 10 ** OTP_DIGITS).toString().padStart(OTP_DIGITS, '0');
}

/**
 * Keyed hash of a code bound to where it may be used (`<purpose>:<phone key>`), so a stored hash
 * reveals nothing and a code for one purpose or number never verifies another. Hex, 64 characters.
 */
export function hashCode(pepper: Buffer, binding: string, code: string): string {
  return createHmac('sha256', pepper).update(`${binding}\u0000${code}`).digest('hex');
}

/** Constant-time comparison of two hex digests. */
export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/** State of a stored code as the verification rule sees it. */
export interface CodeState {
  expiresAt: Date;
  attempts: number;
  consumed: boolean;
}

/**
 * Whether a stored code may still be tried: not used, not expired (at most 10 minutes), fewer than
 * `maxAttempts` wrong tries (then it is dead, and a new one must be requested).
 */
export function codeUsable(state: CodeState, now: Date, maxAttempts: number): boolean {
  return !state.consumed && state.expiresAt.getTime() > now.getTime() && state.attempts < maxAttempts;
}

/** The SMS text of a code, without any other PI. */
export function codeMessage(purpose: OtpPurpose, code: string, ttlS: number): string {
  const what: Record<OtpPurpose, string> = {
    register: 'to create your account',
    'sign-in': 'to sign in',
    'password-reset': 'to reset your password',
    'step-up': 'to confirm this sign-in',
    reauth: 'to confirm it is you',
    'phone-change': 'to confirm your new number',
  };
  return `[PIPP] Your code ${what[purpose]} is ${code}. It expires in ${Math.round(ttlS / 60)} minutes. Never share it with anyone, including our staff.`;
}
