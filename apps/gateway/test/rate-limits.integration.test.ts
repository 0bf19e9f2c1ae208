// Rate limits through the real gateway in front of a real upstream: per client IP, per token subject,
// stricter on sign-in and code endpoints, and not bypassable with a forged X-Forwarded-For unless the
// proxy that sets it is configured as trusted.
import { ErrorResponseSchema, compile } from '@pipp/contracts';
import { TestAuthority } from '@pipp/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type FixtureUpstream } from './fixtures/upstream.js';
import { bearer, closedPort, startGateway } from './helpers.js';

const isErrorShape = compile(ErrorResponseSchema);
let authority: TestAuthority;
let consent: FixtureUpstream;
const gateways: Awaited<ReturnType<typeof startGateway>>[] = [];

async function gateway(extra: Record<string, string>) {
  const down = `http://127.0.0.1:${await closedPort()}`;
  const g = await startGateway({
    AUTH_JWKS_URL: authority.jwksUrl, CONSENT_URL: consent.url, IDENTITY_URL: down, DATA_SHARING_URL: down, RETENTION_URL: down, INCIDENT_URL: down,
    RATE_LIMIT_IP_MAX: '1000', RATE_LIMIT_SUBJECT_MAX: '1000', RATE_LIMIT_SENSITIVE_MAX: '1000', ...extra,
  });
  gateways.push(g);
  return g.app;
}

beforeAll(async () => {
  authority = await TestAuthority.start();
  consent = await startUpstream('consent', { jwksUrl: authority.jwksUrl });
});
afterAll(async () => {
  for (const g of gateways) await g.close();
  await consent?.close();
  await authority?.close();
});

describe('per client IP', () => {
  it('answers 429 with Retry-After once the limit is reached, and a forged X-Forwarded-For does not reset it', async () => {
    const app = await gateway({ RATE_LIMIT_IP_MAX: '5' });
    for (let i = 0; i < 5; i++) {
      const res = await app.inject({ url: '/v1/consent/public/policy', remoteAddress: '203.0.113.7', headers: { 'x-forwarded-for': `198.51.100.${i}` } });
      expect(res.statusCode, `request ${i}`).toBe(200);
    }
    for (const forged of ['198.51.100.99', '10.0.0.1, 198.51.100.7', '127.0.0.1', undefined]) {
      const res = await app.inject({ url: '/v1/consent/public/policy', remoteAddress: '203.0.113.7', headers: forged ? { 'x-forwarded-for': forged, 'x-real-ip': forged } : {} });
      expect(res.statusCode, String(forged)).toBe(429);
      expect(res.json()).toMatchObject({ code: 'PIPP_TOO_MANY_REQUESTS' });
      expect(isErrorShape(res.json())).toBe(true);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    }
    // Another address is not affected, and a refused request never reached the service.
    expect((await app.inject({ url: '/v1/consent/public/policy', remoteAddress: '203.0.113.8' })).statusCode).toBe(200);
  });

  it('limits also the requests that carry no valid token (token guessing)', async () => {
    const app = await gateway({ RATE_LIMIT_IP_MAX: '3' });
    for (let i = 0; i < 3; i++) expect((await app.inject({ url: '/v1/consent/echo-headers', remoteAddress: '203.0.113.20', headers: bearer(`guess${i}`) })).statusCode).toBe(401);
    expect((await app.inject({ url: '/v1/consent/echo-headers', remoteAddress: '203.0.113.20', headers: bearer('guess') })).statusCode).toBe(429);
  });

  it('believes X-Forwarded-For only from a configured trusted proxy', async () => {
    const app = await gateway({ RATE_LIMIT_IP_MAX: '2', TRUSTED_PROXIES: '192.0.2.1' });
    // Through the trusted proxy, each client has its own budget …
    for (const client of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) {
      for (let i = 0; i < 2; i++) {
        const res = await app.inject({ url: '/v1/consent/public/policy', remoteAddress: '192.0.2.1', headers: { 'x-forwarded-for': client } });
        expect(res.statusCode, client).toBe(200);
      }
    }
    const third = await app.inject({ url: '/v1/consent/public/policy', remoteAddress: '192.0.2.1', headers: { 'x-forwarded-for': '198.51.100.1' } });
    expect(third.statusCode).toBe(429);
    // … and a client that prepends a forged address to the chain is still known by the address the proxy saw.
    const forged = await app.inject({ url: '/v1/consent/public/policy', remoteAddress: '192.0.2.1', headers: { 'x-forwarded-for': '203.0.113.200, 198.51.100.1' } });
    expect(forged.statusCode).toBe(429);
    // From an untrusted address the header is ignored altogether.
    for (let i = 0; i < 2; i++) await app.inject({ url: '/v1/consent/public/policy', remoteAddress: '203.0.113.50', headers: { 'x-forwarded-for': `198.51.100.${60 + i}` } });
    expect((await app.inject({ url: '/v1/consent/public/policy', remoteAddress: '203.0.113.50', headers: { 'x-forwarded-for': '198.51.100.70' } })).statusCode).toBe(429);
  });
});

describe('per subject', () => {
  it('limits one account whatever address it comes from, and not other accounts', async () => {
    const app = await gateway({ RATE_LIMIT_SUBJECT_MAX: '4' });
    const token = authority.token({ sub: 'subjRate1', role: 'subject' });
    for (let i = 0; i < 4; i++) {
      const res = await app.inject({ url: '/v1/consent/subjects/subjRate1/profile', remoteAddress: `198.51.100.${10 + i}`, headers: bearer(token) });
      expect(res.statusCode).toBe(200);
    }
    const refused = await app.inject({ url: '/v1/consent/subjects/subjRate1/profile', remoteAddress: '198.51.100.50', headers: bearer(authority.token({ sub: 'subjRate1', role: 'subject' })) });
    expect(refused.statusCode).toBe(429);
    expect(refused.json().message).toMatch(/account/);
    const other = authority.token({ sub: 'subjRate2', role: 'subject' });
    expect((await app.inject({ url: '/v1/consent/subjects/subjRate2/profile', remoteAddress: '198.51.100.10', headers: bearer(other) })).statusCode).toBe(200);
  });
});

describe('sign-in and code endpoints', () => {
  it('are limited more strictly than the rest', async () => {
    const app = await gateway({ RATE_LIMIT_IP_MAX: '100', RATE_LIMIT_SENSITIVE_MAX: '3' });
    const signIn = () => app.inject({ method: 'POST', url: '/v1/consent/public/sign-in', remoteAddress: '203.0.113.30', payload: { phone: '+8613800138000', code: '000000' } });
    for (let i = 0; i < 3; i++) expect((await signIn()).statusCode).toBe(200);
    const before = consent.hits.filter((h) => h.url.endsWith('/sign-in')).length;
    const res = await signIn();
    expect(res.statusCode).toBe(429);
    expect(res.json().message).toMatch(/sign-in/);
    expect(consent.hits.filter((h) => h.url.endsWith('/sign-in')).length).toBe(before);
    // The same address can still read the policy.
    expect((await app.inject({ url: '/v1/consent/public/policy', remoteAddress: '203.0.113.30' })).statusCode).toBe(200);
  });

  it('cover the usual names of such endpoints, and not the rest', async () => {
    const app = await gateway({});
    for (const path of ['/v1/identity/public/sign-in', '/v1/identity/public/codes', '/v1/identity/public/sessions/refresh', '/v1/identity/public/service-tokens',
      '/v1/identity/public/otp', '/v1/identity/public/password-resets', '/v1/identity/public/registrations', '/v1/identity/public/phone/verify']) {
      expect(app.limits.isSensitive(path), path).toBe(true);
    }
    for (const path of ['/v1/consent/public/policy', '/v1/incident/public/announcements', '/v1/identity/subjects/x/sessions', '/v1/identity/public/codes-of-conduct']) {
      expect(app.limits.isSensitive(path), path).toBe(false);
    }
  });
});

describe('slow clients', () => {
  /**
   * A raw connection to a gateway with CLIENT_TIMEOUT_MS `ms` that has sent `head`; `closed` resolves
   * with what the gateway answered once it cut the connection, `startedAt` is when `head` was sent.
   */
  async function rawClient(ms: number, head: string) {
    const app = await gateway({ CLIENT_TIMEOUT_MS: String(ms) });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as import('node:net').AddressInfo;
    const { connect } = await import('node:net');
    const socket = connect(port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    let received = '';
    socket.on('data', (d) => { received += d.toString(); });
    socket.on('error', () => undefined);
    const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(received)));
    socket.write(head);
    return { socket, closed, startedAt: Date.now() };
  }

  it('cuts off a connection that sends part of a request and then stays silent', async () => {
    const { closed, startedAt } = await rawClient(300, 'POST /v1/consent/public/sign-in HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"phone":');
    // Told why (it was closed without an answer: the connection's silence bound fired first).
    expect(await closed).toMatch(/^HTTP\/1\.1 408 [^]*"code":"PIPP_REQUEST_TIMEOUT"/);
    expect(Date.now() - startedAt).toBeLessThan(5000);
  });

  it('cuts off a connection that trickles a request too slowly to ever be silent (slowloris)', async () => {
    const { socket, closed, startedAt } = await rawClient(500, 'POST /v1/consent/public/sign-in HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n');
    // One byte every 100 ms: never silent for CLIENT_TIMEOUT_MS, never done either.
    const trickle = setInterval(() => { if (!socket.destroyed) socket.write(' '); }, 100);
    const received = await closed;
    clearInterval(trickle);
    expect(received).toMatch(/^HTTP\/1\.1 408/);
    expect(Date.now() - startedAt).toBeLessThan(5000);
  });
});
