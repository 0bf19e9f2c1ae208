import { createHash, type JsonWebKey } from 'node:crypto';

/**
 * RFC 7638 JWK thumbprint of an EC public key (base64url SHA-256 of its required members in
 * lexicographic order): a stable key id (`kid`), the same on every instance and across restarts.
 */
export function ecThumbprint(jwk: JsonWebKey): string {
  if (jwk.kty !== 'EC' || !jwk.crv || !jwk.x || !jwk.y) throw new Error('not an EC public key');
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  return createHash('sha256').update(canonical).digest('base64url');
}

/** Splits a string holding one or more PEM blocks into the blocks. */
export function pemBlocks(text: string): string[] {
  return [...text.replace(/\\n/g, '\n').matchAll(/-----BEGIN ([A-Z ]+)-----[\s\S]+?-----END \1-----/g)].map((m) => m[0]);
}
