// An HTTP client of the gateway, one per actor. Each actor connects from its own loopback address
// (127.0.x.y), so the platform sees distinct clients exactly as it would on a network: per-IP rate
// limits and sign-in risk apply to each, and no forwarded-for header has to be trusted.
import { Agent, request } from 'undici';

/** A JSON error body of the platform (one shape across services). */
export interface ApiError { code?: string; message?: string; clause?: string }

/** A response: status and parsed JSON body (undefined when empty). */
export interface Reply<T = Record<string, unknown>> { status: number; body: T }

/** A step failed: what was expected and what the platform said. */
export class DemoFailure extends Error {}

export class Api {
  private constructor(readonly base: string, private readonly dispatcher: Agent, private readonly token?: string, private readonly purpose?: string) {}

  /** A client connecting from `localAddress` (a 127.0.0.0/8 address). */
  static from(base: string, localAddress: string): Api {
    return new Api(base, new Agent({ localAddress, keepAliveTimeout: 10_000 }));
  }

  /** The same client, authenticated with a bearer access token. */
  as(token: string): Api {
    return new Api(this.base, this.dispatcher, token);
  }

  /** The same client stating why it reaches a subject's data (X-PIPP-Purpose, required of staff; audited). */
  for(purpose: string): Api {
    return new Api(this.base, this.dispatcher, this.token, purpose);
  }

  /** Sends a request; JSON body in and out, with `extra` headers. Never throws on an HTTP status. */
  async send<T = Record<string, unknown>>(method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<Reply<T>> {
    const headers: Record<string, string> = { 'user-agent': 'Mozilla/5.0 (Linux; Android 14) PIPP-demo/1.0 Mobile', ...extra };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (this.purpose) headers['x-pipp-purpose'] = this.purpose;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await request(`${this.base}${path}`, {
      method: method as 'GET', headers, body: body === undefined ? undefined : JSON.stringify(body), dispatcher: this.dispatcher,
      headersTimeout: 30_000, bodyTimeout: 30_000,
    });
    const text = await res.body.text();
    let parsed: unknown;
    try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = { message: text.slice(0, 200) }; }
    return { status: res.statusCode, body: parsed as T };
  }

  /** Sends a request and returns the body when the status is one of `expected`; otherwise a DemoFailure. */
  async expect<T = Record<string, unknown>>(expected: number | number[], method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.send<T>(method, path, body);
    const ok = Array.isArray(expected) ? expected : [expected];
    if (!ok.includes(res.status)) throw new DemoFailure(`${method} ${path}: expected ${ok.join('/')}, got ${res.status} ${describe(res.body)}`);
    return res.body;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}

/** An error body in one line: `CODE (clause x): message`. */
export function describe(body: unknown): string {
  const e = (body ?? {}) as ApiError;
  return e.code ? `${e.code}${e.clause ? ` (clause ${e.clause})` : ''}: ${e.message ?? ''}` : JSON.stringify(body ?? '').slice(0, 200);
}

/** The code and clause of an error body: `PIPP_X (clause y)`. */
export function errorCode(body: unknown): string {
  return describe(body).split(':')[0]!;
}
