import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/**
 * Field-level protection with the service's `DATA_ENCRYPTION_KEY` (32 bytes):
 * - `seal`/`open`: AES-256-GCM for webhook secrets and PI received from third parties or supplied about
 *   other people, so a copy of the database alone does not reveal them;
 * - `subjectRef`: a recipient-specific pseudonym of a data subject (HMAC-SHA256), so two recipients
 *   cannot link the same person through our identifiers; sent with shares and deletion notices;
 * - `erasedKey`: the pseudonym under which an account erasure marks a data subject (`erased_subjects`),
 *   so the mark itself does not keep the erased subject's id in clear (as consent does).
 * Keys for each use are derived with HKDF, so one secret never serves two purposes.
 */
export class Sealer {
  private readonly encKey: Buffer;
  private readonly refKey: Buffer;
  private readonly erasedKeyKey: Buffer;

  constructor(rawKey: string) {
    const key = Buffer.from(rawKey.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (key.length !== 32) throw new Error('DATA_ENCRYPTION_KEY must decode to 32 bytes');
    this.encKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'pipp-data-sharing/seal/v1', 32));
    this.refKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'pipp-data-sharing/subject-ref/v1', 32));
    this.erasedKeyKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'pipp-data-sharing/erased-subject/v1', 32));
  }

  /** Encrypts a UTF-8 text; returns `v1.<base64url(iv | tag | ciphertext)>`. */
  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.encKey, iv);
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `v1.${Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64url')}`;
  }

  /** Decrypts what `seal` produced. @throws when the text was tampered with or sealed with another key. */
  open(sealed: string): string {
    if (!sealed.startsWith('v1.')) throw new Error('unknown sealed format');
    const raw = Buffer.from(sealed.slice(3), 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', this.encKey, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }

  /** The pseudonym of `subjectId` for one recipient (22 base64url characters, stable). */
  subjectRef(recipientId: string, subjectId: string): string {
    return createHmac('sha256', this.refKey).update(`${recipientId}\u0000${subjectId}`).digest('base64url').slice(0, 22);
  }

  /** The pseudonym of `subjectId` in `erased_subjects` (HMAC-SHA256, 43 base64url characters, stable; policy 4.2). */
  erasedKey(subjectId: string): string {
    return createHmac('sha256', this.erasedKeyKey).update(subjectId).digest('base64url');
  }

  /** A new webhook signing secret for a recipient (`whsec_` + 32 random bytes). */
  static newSecret(): string {
    return `whsec_${randomBytes(32).toString('base64url')}`;
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    sealer: Sealer;
  }
}

export const cryptoPlugin = fp(async function crypto(app: FastifyInstance, opts: { key: string }) {
  app.decorate('sealer', new Sealer(opts.key));
}, { name: 'pipp-ds-crypto' });
