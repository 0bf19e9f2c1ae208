import { createPrivateKey, createPublicKey, hkdfSync, randomUUID, type JsonWebKey, type KeyObject } from 'node:crypto';
import { createSigner } from 'fast-jwt';
import { ecThumbprint, pemBlocks } from '../domain/keys.js';

/** A published verification key (JWKS entry, RFC 7517). */
export interface PublicJwk extends JsonWebKey { kid: string; alg: 'ES256'; use: 'sig' }

function p256Public(key: KeyObject, variable: string): KeyObject {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  if (pub.asymmetricKeyType !== 'ec' || pub.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error(`${variable} must hold EC P-256 keys (ES256)`);
  }
  return pub;
}

/**
 * identity's signing keys: the current ES256 key (`IDENTITY_SIGNING_KEY`, PKCS#8 PEM) signs every
 * token; earlier keys (`IDENTITY_PREVIOUS_KEYS`) stay published so tokens they signed verify until they
 * expire (rotation without a restart of the verifiers: they refetch the JWKS on an unknown `kid`).
 * Key ids are RFC 7638 thumbprints, identical on every instance.
 * @throws Error naming the variable when a key is not an EC P-256 key.
 */
export class KeyRing {
  readonly kid: string;
  private readonly privateKey: KeyObject;
  private readonly published = new Map<string, { jwk: PublicJwk; pem: string }>();

  constructor(currentPem: string, previousPems = '') {
    let priv: KeyObject;
    try {
      priv = createPrivateKey({ key: currentPem.replace(/\\n/g, '\n'), format: 'pem' });
    } catch {
      throw new Error('IDENTITY_SIGNING_KEY is not a PEM private key (PKCS#8, EC P-256)');
    }
    this.privateKey = priv;
    this.kid = this.publish(p256Public(priv, 'IDENTITY_SIGNING_KEY'));
    for (const block of pemBlocks(previousPems)) {
      let key: KeyObject;
      try {
        key = block.includes('PRIVATE KEY') ? createPrivateKey(block) : createPublicKey(block);
      } catch {
        throw new Error('IDENTITY_PREVIOUS_KEYS holds a PEM block that is not a key');
      }
      this.publish(p256Public(key, 'IDENTITY_PREVIOUS_KEYS'));
    }
  }

  private publish(pub: KeyObject): string {
    const jwk = pub.export({ format: 'jwk' });
    const kid = ecThumbprint(jwk);
    if (!this.published.has(kid)) {
      this.published.set(kid, {
        jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, kid, alg: 'ES256', use: 'sig' },
        pem: pub.export({ format: 'pem', type: 'spki' }).toString(),
      });
    }
    return kid;
  }

  /** The JWKS document: the current key first, then earlier ones. */
  jwks(): { keys: PublicJwk[] } {
    return { keys: [...this.published.values()].map((k) => k.jwk) };
  }

  /** PEM of a published public key by `kid` (in-process verification). @throws Error for an unknown kid. */
  publicPem(kid: string | undefined): string {
    const k = kid ? this.published.get(kid) : undefined;
    if (!k) throw new Error('unknown key id');
    return k.pem;
  }

  /** A signer of ES256 JWTs with the current key. `expiresInS` in seconds. */
  signer(opts: { issuer: string; audience: string; expiresInS: number }) {
    return createSigner({
      key: this.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      algorithm: 'ES256',
      kid: this.kid,
      iss: opts.issuer,
      aud: opts.audience,
      expiresIn: opts.expiresInS * 1000,
    });
  }

  /**
   * A secret derived from the current key (HKDF-SHA256) for keyed hashes of one-time codes and rate
   * counters; rotating the key invalidates outstanding codes (at most 10 minutes old), nothing else.
   */
  derive(label: string): Buffer {
    const der = this.privateKey.export({ format: 'der', type: 'pkcs8' });
    return Buffer.from(hkdfSync('sha256', der, Buffer.from('pipp-identity'), Buffer.from(label), 32));
  }
}

/** A random opaque id with a readable prefix (`sub_…`, `ses_…`). Never derived from PI. */
export function newId(prefix: string): string {
  return `${prefix}_${randomUUID().replace(/-/g, '')}`;
}
