// Tokens as every other service sees them: ES256 access tokens verified through identity's published
// JWKS by the kit's auth plugin in another (real, in-process) service, refresh rotation with reuse
// detection, sign-out and revocation reaching that other service over Kafka, service tokens, and key
// rotation with previous keys still published.
import { AuthConfigProperties, createFastify, defineConfig, infrastructurePlugin, loadConfig } from '@pipp/service-kit';
import { collectMessages, dropDatabase, isolatedEnv, waitFor } from '@pipp/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import { bearer, identityEnv, newSigningKey, register, SERVICE_SECRETS, startIdentity, stopIdentity, type IdentityApp } from './helpers.js';

let env: Record<string, string>;
let app: IdentityApp;
let jwksUrl: string;
let other: Awaited<ReturnType<typeof startOtherService>>;
let otherDb = '';

/** A minimal second service built only from the kit, verifying tokens like consent or retention do. */
async function startOtherService() {
  const schema = defineConfig({ ...AuthConfigProperties }, { PORT: 0, MONGO_DB: 'x' });
  const e = isolatedEnv('otherservice', { AUTH_JWKS_URL: jwksUrl, KAFKA_TOPIC_PREFIX: env.KAFKA_TOPIC_PREFIX! });
  otherDb = e.MONGO_DB!;
  const config = loadConfig(schema, e);
  const svc = createFastify({ service: 'consent', config });
  await svc.register(infrastructurePlugin, { service: 'consent', config, topics: ['privacy.session.revoked'] });
  svc.get('/whoami', { preHandler: svc.authenticate }, async (request) => ({ sub: request.user.sub, role: request.user.role }));
  await svc.ready();
  return svc;
}

beforeAll(async () => {
  env = identityEnv();
  app = await startIdentity(env);
  await app.listen({ host: '127.0.0.1', port: 0 });
  jwksUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/v1/identity/.well-known/jwks.json`;
  other = await startOtherService();
});
afterAll(async () => {
  await other?.close();
  if (otherDb) await dropDatabase(otherDb);
  await stopIdentity(app, env);
});

const whoami = (token: string) => other.inject({ url: '/whoami', headers: bearer(token) });
const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());
const headerOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString());

describe('access tokens and the JWKS', () => {
  it('publishes an ES256 key set that another service uses to verify identity-signed tokens', async () => {
    const jwks = await app.inject({ url: '/v1/identity/.well-known/jwks.json' });
    expect(jwks.statusCode).toBe(200);
    const { keys } = jwks.json();
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(keys[0]).not.toHaveProperty('d');

    const s = await register(app, env);
    const claims = claimsOf(s.accessToken);
    expect(headerOf(s.accessToken)).toMatchObject({ alg: 'ES256', kid: keys[0].kid });
    expect(claims).toMatchObject({ sub: s.subjectId, role: 'subject', sid: s.sessionId, iss: 'pipp-identity', aud: 'pipp' });
    expect(Number.isInteger(claims.iat) && Number.isInteger(claims.exp)).toBe(true);
    expect(claims.exp - claims.iat).toBe(600);
    expect(typeof claims.jti).toBe('string');
    const res = await whoami(s.accessToken);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ sub: s.subjectId, role: 'subject' });
  });

  it('keeps earlier keys published during a rotation, so their tokens still verify', async () => {
    const oldKey = env.IDENTITY_SIGNING_KEY!;
    const env2 = { ...env, IDENTITY_SIGNING_KEY: newSigningKey(), IDENTITY_PREVIOUS_KEYS: oldKey, MONGO_DB: `${env.MONGO_DB}_r` };
    const rotated = await startIdentity(env2);
    try {
      const { keys } = (await rotated.inject({ url: '/v1/identity/.well-known/jwks.json' })).json();
      const { keys: oldKeys } = (await app.inject({ url: '/v1/identity/.well-known/jwks.json' })).json();
      expect(keys).toHaveLength(2);
      expect(keys[1].kid).toBe(oldKeys[0].kid);
      const s = await register(app, env);
      // A token of the old key verifies at the rotated identity (in-process key ring).
      const res = await rotated.inject({ method: 'POST', url: '/v1/identity/sign-out', headers: bearer(s.accessToken) });
      expect(res.statusCode).toBe(204);
    } finally {
      await stopIdentity(rotated, env2);
    }
  });
});

describe('bootstrap staff', () => {
  it('creates a bootstrap account with the id it is given, so other services can be configured with it', async () => {
    const id = `stf_${'ab'.repeat(16)}`;
    const password = 'bootstrap-dpo-harbour-lantern-77';
    const env2 = { ...env, MONGO_DB: `${env.MONGO_DB}_b`, IDENTITY_BOOTSTRAP_STAFF: JSON.stringify([{ id, phone: '+8613800000077', role: 'dpo', displayName: 'Boot DPO', password }]) };
    const booted = await startIdentity(env2);
    try {
      const res = await booted.inject({ method: 'POST', url: '/v1/identity/public/staff/sign-in', payload: { phone: '+8613800000077', password, deviceId: 'dpo-laptop-01' } });
      expect(res.statusCode, res.body).toBe(200);
      expect(claimsOf(res.json().accessToken)).toMatchObject({ sub: id, role: 'dpo' });
      // Announced to incident, which reaches staff by it (retention's escalations to the DPO reached nobody).
      const [contact] = (await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.subject.contact-changed`, (m) => m.some((x) => x.key === id))).filter((x) => x.key === id);
      expect(JSON.parse(contact!.value!).payload).toMatchObject({ subjectId: id, channels: { sms: '+8613800000077' } });
      // So is an operator the DPO creates, and its deactivation takes the channel away.
      const dpo = bearer(res.json().accessToken);
      const created = await booted.inject({ method: 'POST', url: '/v1/identity/admin/staff', headers: dpo, payload: { phone: '+8613800000078', role: 'operator', displayName: 'Op', password: 'operator-harbour-lantern-9911' } });
      expect(created.statusCode, created.body).toBe(201);
      const opId = created.json().staffId as string;
      expect((await booted.inject({ method: 'DELETE', url: `/v1/identity/admin/staff/${opId}`, headers: dpo })).statusCode).toBe(204);
      const ofOp = (await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.subject.contact-changed`, (m) => m.filter((x) => x.key === opId).length >= 2)).filter((x) => x.key === opId);
      expect(ofOp.map((x) => JSON.parse(x.value!).payload.channels)).toEqual([{ sms: '+8613800000078', telephone: '+8613800000078' }, {}]);
    } finally {
      await stopIdentity(booted, env2);
    }
  });
});

describe('refresh tokens', () => {
  it('rotate on each use; reusing a rotated one revokes the whole session family everywhere', async () => {
    const s = await register(app, env);
    const r1 = await app.inject({ method: 'POST', url: '/v1/identity/public/tokens/refresh', payload: { refreshToken: s.refreshToken } });
    expect(r1.statusCode).toBe(200);
    const t1 = r1.json();
    expect(t1.refreshToken).not.toBe(s.refreshToken);
    expect(t1.sessionId).toBe(s.sessionId);
    const r2 = await app.inject({ method: 'POST', url: '/v1/identity/public/tokens/refresh', payload: { refreshToken: t1.refreshToken } });
    expect(r2.statusCode).toBe(200);
    const t2 = r2.json();
    expect((await whoami(t2.accessToken)).statusCode).toBe(200);

    // The first refresh token again: reuse (within the grace period too, as its successor t1 is spent).
    const reuse = await app.inject({ method: 'POST', url: '/v1/identity/public/tokens/refresh', payload: { refreshToken: s.refreshToken } });
    expect(reuse.statusCode).toBe(401);
    expect(reuse.json().code).toBe('PIPP_INVALID_REFRESH_TOKEN');
    // The newest token of the family is dead too, and so are the family's access tokens.
    const after = await app.inject({ method: 'POST', url: '/v1/identity/public/tokens/refresh', payload: { refreshToken: t2.refreshToken } });
    expect(after.statusCode).toBe(401);
    expect((await app.inject({ method: 'POST', url: '/v1/identity/sign-out', headers: bearer(t2.accessToken) })).statusCode).toBe(401);
    await waitFor(async () => (await whoami(t2.accessToken)).statusCode === 401, { what: 'the revocation to reach the other service' });
    const [event] = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.session.revoked`, (m) => m.some((x) => JSON.parse(x.value!).payload.sessionId === s.sessionId))
      .then((m) => m.filter((x) => JSON.parse(x.value!).payload.sessionId === s.sessionId));
    expect(JSON.parse(event!.value!).payload).toMatchObject({ subjectId: s.subjectId, sessionId: s.sessionId, reason: 'refresh-reuse' });
  });

  it('answers parallel refreshes with one token alike within the grace period, and the session goes on', async () => {
    const s = await register(app, env);
    const answers = await Promise.all(Array.from({ length: 10 }, () =>
      app.inject({ method: 'POST', url: '/v1/identity/public/tokens/refresh', payload: { refreshToken: s.refreshToken } })));
    expect(answers.map((a) => a.statusCode)).toEqual(Array(10).fill(200));
    const pairs = answers.map((a) => a.json());
    // One successor for all: whichever answer the client keeps, the family continues.
    expect(new Set(pairs.map((p) => p.refreshToken)).size).toBe(1);
    expect(pairs[0].refreshToken).not.toBe(s.refreshToken);
    expect(new Set(pairs.map((p) => p.accessToken)).size).toBe(10);
    for (const p of pairs) expect((await whoami(p.accessToken)).statusCode).toBe(200);
    const next = await app.inject({ method: 'POST', url: '/v1/identity/public/tokens/refresh', payload: { refreshToken: pairs[3].refreshToken } });
    expect(next.statusCode).toBe(200);
    expect(next.json().sessionId).toBe(s.sessionId);
    expect((await whoami(next.json().accessToken)).statusCode).toBe(200);
  });

  it('counts a rotated refresh token as reuse once the grace period is over', async () => {
    const env2 = { ...env, REFRESH_REUSE_GRACE_S: '1', MONGO_DB: `${env.MONGO_DB}_g` };
    const short = await startIdentity(env2);
    try {
      const s = await register(short, env2);
      const refresh = (refreshToken: string) => short.inject({ method: 'POST', url: '/v1/identity/public/tokens/refresh', payload: { refreshToken } });
      const t1 = (await refresh(s.refreshToken)).json();
      expect((await refresh(s.refreshToken)).json().refreshToken).toBe(t1.refreshToken);
      await new Promise((r) => setTimeout(r, 1300));
      const late = await refresh(s.refreshToken);
      expect(late.statusCode).toBe(401);
      expect(late.json().message).toMatch(/already used/);
      expect((await refresh(t1.refreshToken)).statusCode).toBe(401);
    } finally {
      await stopIdentity(short, env2);
    }
  });

  it('refuses forged, malformed and unknown refresh tokens without revoking anything', async () => {
    const s = await register(app, env);
    const forged = `${s.sessionId}.${'A'.repeat(43)}`;
    for (const refreshToken of [forged, 'garbage', `${s.sessionId}.`, 'ses_00000000000000000000000000000000.' + 'B'.repeat(43)]) {
      const res = await app.inject({ method: 'POST', url: '/v1/identity/public/tokens/refresh', payload: { refreshToken } });
      expect(res.statusCode, refreshToken).toBe(401);
    }
    // The genuine token still works: a forged one (the session id is visible in access tokens) is no reuse.
    expect((await app.inject({ method: 'POST', url: '/v1/identity/public/tokens/refresh', payload: { refreshToken: s.refreshToken } })).statusCode).toBe(200);
  });
});

describe('sign-out', () => {
  it('ends the session: its access token stops working in identity at once and in other services via the event', async () => {
    const s = await register(app, env);
    expect((await whoami(s.accessToken)).statusCode).toBe(200);
    const out = await app.inject({ method: 'POST', url: '/v1/identity/sign-out', headers: bearer(s.accessToken) });
    expect(out.statusCode).toBe(204);
    expect((await app.inject({ method: 'POST', url: '/v1/identity/sign-out', headers: bearer(s.accessToken) })).statusCode).toBe(401);
    expect((await app.inject({ method: 'POST', url: '/v1/identity/public/tokens/refresh', payload: { refreshToken: s.refreshToken } })).statusCode).toBe(401);
    await waitFor(async () => (await whoami(s.accessToken)).statusCode === 401, { what: 'the sign-out to reach the other service' });
  });
});

describe('service tokens', () => {
  it('issues a service token for valid client credentials, verified by other services with role service', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/identity/public/service-tokens', payload: { clientId: 'retention', clientSecret: SERVICE_SECRETS.retention } });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ tokenType: 'Bearer', expiresIn: 600 });
    expect(claimsOf(body.accessToken)).toMatchObject({ sub: 'retention', role: 'service' });
    expect(claimsOf(body.accessToken).sid).toBeUndefined();
    expect((await whoami(body.accessToken)).json()).toEqual({ sub: 'retention', role: 'service' });
  });

  it('answers wrong secrets and unknown clients with the same 401', async () => {
    const wrong = await app.inject({ method: 'POST', url: '/v1/identity/public/service-tokens', payload: { clientId: 'retention', clientSecret: 'nope-nope-nope-nope' } });
    const unknown = await app.inject({ method: 'POST', url: '/v1/identity/public/service-tokens', payload: { clientId: 'gateway', clientSecret: SERVICE_SECRETS.retention } });
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    const strip = (b: Record<string, unknown>) => ({ ...b, requestId: undefined });
    expect(strip(wrong.json())).toEqual(strip(unknown.json()));
    expect(wrong.json().code).toBe('PIPP_INVALID_CLIENT');
  });
});
