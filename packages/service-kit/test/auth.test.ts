// Token verification as every service does it, against a real JWKS served on loopback.
import { TestAuthority } from '@pipp/testing';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authPlugin, errorHandlerPlugin, RevocationList, VerifiedTokens, type AccessTokenClaims } from '../src/index.js';

let authority: TestAuthority;
let app: FastifyInstance;
/** Route schemas, kept to see what the guards declared on them. */
const schemas = { own: {} as Record<string, unknown>, staff: {} as Record<string, unknown>, declared: { 'x-pipp-roles': ['dpo'] } as Record<string, unknown> };

beforeAll(async () => {
  authority = await TestAuthority.start();
  app = Fastify();
  await app.register(errorHandlerPlugin);
  await app.register(authPlugin, { issuer: 'pipp-identity', audience: 'pipp', jwksUrl: authority.jwksUrl });
  app.get('/me', { preHandler: app.authenticate }, async (request) => ({ sub: request.user.sub }));
  app.get('/ops', { preHandler: app.requireRole('operator', 'dpo') }, async () => ({ ok: true }));
  app.get('/subjects/:subjectId/data', { preHandler: app.requireSubject() }, async () => ({ ok: true }));
  app.post('/subjects/:subjectId/notes', {
    preHandler: app.requireSubject(),
    schema: { body: { type: 'object', properties: { text: { type: 'string', maxLength: 10 } }, required: ['text'], additionalProperties: false } },
  }, async () => ({ ok: true }));
  app.put('/subjects/:subjectId/secret', { preHandler: app.requireSubject('subjectId', []), schema: schemas.own }, async () => ({ ok: true }));
  app.get('/subjects/:subjectId/summary', { preHandler: app.requireSubject(), schema: schemas.staff }, async () => ({ ok: true }));
  app.get('/admin/things', { preHandler: app.requireRole('operator', 'dpo'), schema: schemas.declared }, async () => ({ ok: true }));
  await app.ready();
});
afterAll(async () => {
  await app.close();
  await authority.close();
});

describe('roles in the API description', () => {
  it('declares on each guarded route the roles its guard admits (x-pipp-roles), unless the route declares them itself', () => {
    expect(schemas.own['x-pipp-roles']).toEqual(['subject']);
    expect(schemas.staff['x-pipp-roles']).toEqual(['subject', 'operator', 'dpo']);
    expect(schemas.declared['x-pipp-roles']).toEqual(['dpo']);
  });
});

const get = (url: string, token?: string) => app.inject({ url, headers: token ? { authorization: `Bearer ${token}` } : {} });

describe('guards before validation', () => {
  it('answers 401/403 before judging the body, so a caller without access learns nothing of its schema', async () => {
    const bad = { text: 'far too long for the schema', extra: 1 };
    const post = (token?: string) => app.inject({ method: 'POST', url: '/subjects/u1/notes', payload: bad, headers: token ? { authorization: `Bearer ${token}` } : {} });
    expect((await post()).statusCode).toBe(401);
    expect((await post(authority.token({ sub: 'u2', role: 'subject' }))).statusCode).toBe(403);
    const own = await post(authority.token({ sub: 'u1', role: 'subject' }));
    expect(own.statusCode).toBe(400);
  });
});

describe('access tokens', () => {
  it('accepts a valid token', async () => {
    const res = await get('/me', authority.token({ sub: 'u1', role: 'subject' }));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ sub: 'u1' });
  });

  it('answers 401 (never 5xx) for missing, malformed, expired, not-yet-valid, wrong-issuer, wrong-audience, unsigned, algorithm-confused and unknown-key tokens', async () => {
    const now = Math.floor(Date.now() / 1000);
    const other = await TestAuthority.start();
    try {
      const cases: Record<string, string | undefined> = {
        missing: undefined,
        garbage: 'not.a.token',
        expired: authority.token({ sub: 'u1', role: 'subject', iat: now - 600, expiresInS: 60 }),
        notYetValid: authority.token({ sub: 'u1', role: 'subject', nbf: now + 600 }),
        wrongIssuer: authority.token({ sub: 'u1', role: 'subject', iss: 'someone-else' }),
        wrongAudience: authority.token({ sub: 'u1', role: 'subject', aud: 'another-app' }),
        algNone: authority.unsignedToken({ sub: 'u1', role: 'operator' }),
        hmacWithPublicKey: authority.hmacWithPublicKeyToken({ sub: 'u1', role: 'operator' }),
        unknownKey: other.token({ sub: 'u1', role: 'operator' }),
        unknownRole: authority.token({ sub: 'u1', role: 'root' }),
      };
      for (const [name, token] of Object.entries(cases)) {
        const res = await get('/me', token);
        expect(res.statusCode, name).toBe(401);
        expect(res.json().code, name).toBe('PIPP_UNAUTHORIZED');
      }
      expect((await get('/me', cases.expired)).json().message).toMatch(/expired/);
    } finally {
      await other.close();
    }
  });

  it('picks up a rotated signing key without a restart', async () => {
    authority.rotate();
    const res = await get('/me', authority.token({ sub: 'u2', role: 'subject' }));
    expect(res.statusCode).toBe(200);
  });

  it('enforces roles and ownership', async () => {
    const subject = authority.token({ sub: 'u1', role: 'subject' });
    const operator = authority.token({ sub: 'op1', role: 'operator' });
    expect((await get('/ops', subject)).statusCode).toBe(403);
    expect((await get('/ops', operator)).statusCode).toBe(200);
    expect((await get('/subjects/u1/data', subject)).statusCode).toBe(200);
    expect((await get('/subjects/u2/data', subject)).json()).toMatchObject({ statusCode: 403, message: 'You may only reach your own data' });
    expect((await get('/subjects/u2/data', operator)).statusCode).toBe(200);
    const service = authority.token({ sub: 'retention', role: 'service' });
    // A role the route does not admit is told which roles it needs, not that the data is someone else's.
    expect((await get('/subjects/u2/data', service)).json()).toMatchObject({ statusCode: 403, message: 'This needs one of the roles: subject (their own data), operator, dpo' });
  });

  it('rejects tokens revoked for their subject or their session', async () => {
    const issuedBefore = Math.floor(Date.now() / 1000) - 5;
    const a = authority.token({ sub: 'rv1', role: 'subject', sid: 'sA', iat: issuedBefore });
    const b = authority.token({ sub: 'rv1', role: 'subject', sid: 'sB', iat: issuedBefore });
    const c = authority.token({ sub: 'rv2', role: 'subject', sid: 'sC', iat: issuedBefore });
    app.revocations.apply({ subjectId: 'rv1', sessionId: 'sA', notBefore: new Date().toISOString() });
    expect((await get('/me', a)).statusCode).toBe(401);
    expect((await get('/me', b)).statusCode).toBe(200);
    app.revocations.apply({ subjectId: 'rv1', notBefore: new Date().toISOString() });
    expect((await get('/me', b)).statusCode).toBe(401);
    expect((await get('/me', c)).statusCode).toBe(200);
    // A token issued after the revocation (a new sign-in) works again.
    const later = authority.token({ sub: 'rv1', role: 'subject', sid: 'sD', iat: Math.floor(Date.now() / 1000) + 1 });
    expect((await get('/me', later)).statusCode).toBe(200);
  });

  it('stops accepting a token at its expiry, though it was verified (and remembered) before', async () => {
    const token = authority.token({ sub: 'short', role: 'subject', expiresInS: 1 });
    const { exp } = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number };
    expect((await get('/me', token)).statusCode).toBe(200);
    expect((await get('/me', token)).statusCode).toBe(200);
    await new Promise((r) => setTimeout(r, exp * 1000 - Date.now() + 50));
    const late = await get('/me', token);
    expect(late.statusCode).toBe(401);
    expect(late.json().message).toMatch(/expired/);
  });

  it('checks each distinct token: a verified one vouches for no altered copy of it', async () => {
    const good = authority.token({ sub: 'tamper', role: 'subject' });
    expect((await get('/me', good)).statusCode).toBe(200);
    const [h, p, sig] = good.split('.') as [string, string, string];
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), role: 'dpo' })).toString('base64url')}.${sig}`;
    expect((await get('/ops', forged)).statusCode).toBe(401);
  });
});

describe('VerifiedTokens', () => {
  const claims = (exp: number): AccessTokenClaims => ({ sub: 's', role: 'subject', iss: 'i', aud: 'a', iat: exp - 60, exp });
  it('trusts a token until its exp and for at most the TTL, and keeps at most `max`', () => {
    const now = 1_000_000_000_000;
    const tokens = new VerifiedTokens(60_000, 2);
    tokens.set('a', claims(now / 1000 + 10), now);
    expect(tokens.get('a', now + 9_999)?.sub).toBe('s');
    expect(tokens.get('a', now + 10_000)).toBeUndefined(); // its exp
    tokens.set('b', claims(now / 1000 + 3600), now);
    expect(tokens.get('b', now + 59_999)).toBeDefined();
    expect(tokens.get('b', now + 60_000)).toBeUndefined(); // the TTL
    tokens.set('c', claims(now / 1000 + 3600), now);
    tokens.set('d', claims(now / 1000 + 3600), now);
    tokens.set('e', claims(now / 1000 + 3600), now);
    expect(tokens.get('c', now)).toBeUndefined(); // the oldest, dropped
    expect(tokens.get('e', now)).toBeDefined();
    tokens.set('f', claims(now / 1000 - 1), now); // already expired: not remembered
    expect(tokens.get('f', now)).toBeUndefined();
  });
});

describe('RevocationList', () => {
  it('forgets revocations older than the longest token lifetime', () => {
    const list = new RevocationList(1000);
    list.apply({ subjectId: 's', notBefore: new Date(Date.now() - 5000).toISOString() });
    list.apply({ subjectId: 't', notBefore: new Date().toISOString() });
    expect(list.isRevoked({ sub: 's', iat: Date.now() / 1000 - 10 })).toBe(false);
    expect(list.isRevoked({ sub: 't', iat: Date.now() / 1000 - 10 })).toBe(true);
  });
});

describe('cachedByKid', () => {
  it('looks a key up once per kid within the TTL, and retries a failed lookup', async () => {
    const { cachedByKid } = await import('../src/index.js');
    const calls: (string | undefined)[] = [];
    let fail = true;
    const lookup = cachedByKid(async (kid) => {
      calls.push(kid);
      if (kid === 'bad' && fail) throw new Error('unknown kid');
      return `pem-${kid}`;
    }, 60_000);
    expect(await lookup('k1')).toBe('pem-k1');
    expect(await lookup('k1')).toBe('pem-k1');
    expect(await lookup('k2')).toBe('pem-k2');
    await expect(lookup('bad')).rejects.toThrow('unknown kid');
    await new Promise((r) => setImmediate(r));
    fail = false;
    expect(await lookup('bad')).toBe('pem-bad');
    expect(calls).toEqual(['k1', 'k2', 'bad', 'bad']);
  });

  it('fetches the key set for unknown kids within a budget (forged tokens)', async () => {
    const { cachedByKid } = await import('../src/index.js');
    const calls: (string | undefined)[] = [];
    const lookup = cachedByKid(async (kid) => {
      calls.push(kid);
      await new Promise((r) => setTimeout(r, 20));
      if (kid !== 'real' && kid !== 'rotated') throw new Error('unknown kid');
      return `pem-${kid}`;
    }, 60_000, { burst: 3, refillMs: 300 });
    expect(await lookup('real')).toBe('pem-real');
    const forged = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => lookup(`forged-${i}`)));
    expect(forged.every((r) => r.status === 'rejected')).toBe(true);
    expect(calls).toEqual(['real', 'forged-0', 'forged-1']); // 'real' took one of the 3
    // A known key is served meanwhile; a new one is fetched once the budget allows.
    expect(await lookup('real')).toBe('pem-real');
    await expect(lookup('rotated')).rejects.toThrow(/fetched too often/);
    await new Promise((r) => setTimeout(r, 320));
    expect(await lookup('rotated')).toBe('pem-rotated');
    expect(calls).toEqual(['real', 'forged-0', 'forged-1', 'rotated']);
  });
});
