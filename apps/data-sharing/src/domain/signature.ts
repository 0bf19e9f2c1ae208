import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signatures of the messages exchanged with recipients (deletion notices we send, acknowledgments they
 * send back): HMAC-SHA256 with the recipient's own secret over `<unix seconds>.<raw body>`, sent as
 * `x-pipp-signature: t=<unix seconds>,v1=<hex>` (the Stripe/Standard-Webhooks scheme). The timestamp
 * binds the signature to a moment, so a captured message cannot be replayed later than the tolerance.
 */
export const SIGNATURE_HEADER = 'x-pipp-signature';

/** Hex HMAC-SHA256 of `${timestamp}.${body}`. */
export function computeSignature(secret: string, timestampS: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestampS}.${body}`).digest('hex');
}

/** The header value for a body signed now (or at `timestampS`). */
export function signatureHeader(secret: string, body: string, timestampS = Math.floor(Date.now() / 1000)): string {
  return `t=${timestampS},v1=${computeSignature(secret, timestampS, body)}`;
}

/**
 * Verifies a signature header against the raw body. Accepts several `v1=` values (during a secret
 * rotation the sender may sign with both). Returns the reason on failure.
 * @param toleranceS accepted clock skew in seconds, both directions.
 */
export function verifySignature(header: string | undefined, body: string, secrets: string[], nowS: number, toleranceS: number): { ok: true } | { ok: false; reason: string } {
  if (!header) return { ok: false, reason: `the ${SIGNATURE_HEADER} header is missing` };
  const parts = header.split(',').map((p) => p.trim().split('=', 2) as [string, string | undefined]);
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  const sigs = parts.filter(([k, v]) => k === 'v1' && v && /^[0-9a-f]{64}$/.test(v)).map(([, v]) => Buffer.from(v!, 'hex'));
  if (!Number.isInteger(t) || !sigs.length) return { ok: false, reason: `the ${SIGNATURE_HEADER} header is malformed (t=<seconds>,v1=<hex>)` };
  if (Math.abs(nowS - t) > toleranceS) return { ok: false, reason: 'the signature timestamp is outside the accepted window' };
  for (const secret of secrets) {
    const expected = Buffer.from(computeSignature(secret, t, body), 'hex');
    if (sigs.some((s) => s.length === expected.length && timingSafeEqual(s, expected))) return { ok: true };
  }
  return { ok: false, reason: 'the signature does not match' };
}
