import { createSigner } from 'fast-jwt';
import { createHmac, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Key { kid: string; privateKey: KeyObject; publicKey: KeyObject }

export interface TokenClaims {
  sub: string;
  role: string;
  sid?: string;
  /** Lifetime in seconds (negative for an already expired token). Default 300. */
  expiresInS?: number;
  iss?: string;
  aud?: string;
  /** Issued-at in whole seconds. Default now. */
  iat?: number;
  nbf?: number;
  [extra: string]: unknown;
}

const b64url = (v: object | string) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/**
 * A real token issuer for service tests that do not run the identity service: an ES256 key pair whose
 * JWKS is served over HTTP on loopback, exactly as identity publishes its own. Also crafts the hostile
 * tokens (alg none, HMAC signed with the public key, unknown kid) that verification must refuse.
 */
export class TestAuthority {
  readonly issuer: string;
  readonly audience: string;
  private keys: Key[] = [];
  private server: Server | undefined;
  jwksUrl = '';

  private constructor(opts: { issuer?: string; audience?: string }) {
    this.issuer = opts.issuer ?? 'pipp-identity';
    this.audience = opts.audience ?? 'pipp';
    this.rotate();
  }

  static async start(opts: { issuer?: string; audience?: string } = {}): Promise<TestAuthority> {
    const a = new TestAuthority(opts);
    a.server = createServer((req, res) => {
      if (req.url === '/.well-known/jwks.json') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(a.jwks()));
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => a.server!.listen(0, '127.0.0.1', r));
    a.jwksUrl = `http://127.0.0.1:${(a.server.address() as AddressInfo).port}/.well-known/jwks.json`;
    return a;
  }

  /** Adds a new current signing key; older keys stay published (as during a rotation). */
  rotate(): string {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const kid = randomUUID();
    this.keys.unshift({ kid, privateKey, publicKey });
    return kid;
  }

  /** Stops publishing all keys but the current one. */
  retireOldKeys(): void {
    this.keys = this.keys.slice(0, 1);
  }

  jwks() {
    return { keys: this.keys.map((k) => ({ ...k.publicKey.export({ format: 'jwk' }), kid: k.kid, alg: 'ES256', use: 'sig' })) };
  }

  get publicKeyPem(): string {
    return this.keys[0]!.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  }

  /** A valid ES256 access token (override any claim to make it invalid in one respect). */
  token(claims: TokenClaims): string {
    const { expiresInS = 300, iat = Math.floor(Date.now() / 1000), ...rest } = claims;
    const key = this.keys[0]!;
    const sign = createSigner({ key: key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), algorithm: 'ES256', kid: key.kid });
    return sign({ iss: this.issuer, aud: this.audience, jti: randomUUID(), ...rest, iat, exp: iat + expiresInS });
  }

  /** An unsigned token (`alg: none`). */
  unsignedToken(claims: TokenClaims): string {
    const now = Math.floor(Date.now() / 1000);
    return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ iss: this.issuer, aud: this.audience, iat: now, exp: now + 300, ...claims })}.`;
  }

  /** Algorithm confusion: HS256 signed with the published public key as the HMAC secret. */
  hmacWithPublicKeyToken(claims: TokenClaims): string {
    const now = Math.floor(Date.now() / 1000);
    const head = `${b64url({ alg: 'HS256', typ: 'JWT', kid: this.keys[0]!.kid })}.${b64url({ iss: this.issuer, aud: this.audience, iat: now, exp: now + 300, ...claims })}`;
    return `${head}.${createHmac('sha256', this.publicKeyPem).update(head).digest('base64url')}`;
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
