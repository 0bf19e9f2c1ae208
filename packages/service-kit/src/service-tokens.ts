import type { ServiceName } from '@pipp/contracts';

/**
 * Access tokens for calls between services (role `service`), obtained from the identity service with
 * client credentials: `POST <identityUrl>/v1/identity/public/service-tokens` with `{clientId, clientSecret}`
 * → `{accessToken, tokenType: 'Bearer', expiresIn}` (seconds). Cached until 30 s before expiry.
 */
export class ServiceTokens {
  private cached: { token: string; until: number } | undefined;
  private pending: Promise<string> | undefined;

  constructor(private readonly opts: { identityUrl: string; clientId: ServiceName; clientSecret: string }) {}

  async token(): Promise<string> {
    if (this.cached && Date.now() < this.cached.until) return this.cached.token;
    this.pending ??= this.fetchToken().finally(() => { this.pending = undefined; });
    return this.pending;
  }

  /** Forgets the cached token (after a 401, e.g. because signing keys rotated). */
  invalidate(): void {
    this.cached = undefined;
  }

  private async fetchToken(): Promise<string> {
    const res = await fetch(new URL('/v1/identity/public/service-tokens', this.opts.identityUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ clientId: this.opts.clientId, clientSecret: this.opts.clientSecret }),
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) throw new Error(`identity refused a service token for ${this.opts.clientId}: HTTP ${res.status}`);
    const body = await res.json() as { accessToken: string; expiresIn: number };
    this.cached = { token: body.accessToken, until: Date.now() + (body.expiresIn - 30) * 1000 };
    return body.accessToken;
  }
}
