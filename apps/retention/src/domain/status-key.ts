import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Status keys (policy 4.1, 4.2: the subject sees the progress of their erasure request): an account
 * erasure ends the subject's sessions and account, so the requester is handed, once, a random key
 * (192 bits, base64url) that shows that one request without signing in. Only its SHA-256 is stored.
 */
export function newStatusKey(): { key: string; hash: string } {
  const key = randomBytes(24).toString('base64url');
  return { key, hash: statusKeyHash(key) };
}

/** SHA-256 (hex) of a status key, as stored on the request. */
export function statusKeyHash(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** True when `key` is one of the keys whose hashes are stored (compared in constant time). */
export function statusKeyMatches(key: string, hashes: readonly string[] | undefined): boolean {
  const given = Buffer.from(statusKeyHash(key), 'hex');
  return (hashes ?? []).some((h) => h.length === 64 && timingSafeEqual(Buffer.from(h, 'hex'), given));
}
