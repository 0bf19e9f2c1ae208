// A withdrawal takes effect at once for every service: two consent instances (one database, one broker)
// and the real data-sharing service, whose sharing path asks consent through the real consent client
// and its cache. A withdrawal recorded on instance A blocks a sharing request that data-sharing, talking
// to instance B, receives one second later.
//
// The data-sharing app is imported by package name at run time rather than declared as a
// devDependency: data-sharing already devDepends on @pipp/consent for its own tests, and turbo refuses
// a dependency cycle. `npx turbo run build` builds it; the branch svc/data-sharing is merged here.
import { loadConfig } from '@pipp/service-kit';
import { isolatedEnv } from '@pipp/testing';
import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Harness, change, register, waitFor, type ConsentApp } from './helpers.js';

let h: Harness;
let a: ConsentApp;
let b: ConsentApp;
let env: Record<string, string>;
let ds: FastifyInstance;

async function startDataSharing(consentUrl: string, topicPrefix: string): Promise<FastifyInstance> {
  const appModule = '@pipp/data-sharing/app';
  const configModule = '@pipp/data-sharing/config';
  const { buildApp } = await import(appModule) as { buildApp: (c: unknown, o: { serviceToken: () => Promise<string> }) => Promise<FastifyInstance> };
  const { ConfigSchema } = await import(configModule) as { ConfigSchema: Parameters<typeof loadConfig>[0] };
  const dsEnv = isolatedEnv('data-sharing', {
    AUTH_JWKS_URL: h.authority.jwksUrl, KAFKA_TOPIC_PREFIX: topicPrefix, CONSENT_URL: consentUrl,
    SERVICE_CLIENT_SECRETS: JSON.stringify({ 'data-sharing': 'test-secret' }), DATA_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    WEBHOOK_ALLOWED_HOSTS: '127.0.0.1', WEBHOOK_ALLOW_LOOPBACK: 'true',
  });
  h.databases.add(dsEnv.MONGO_DB!);
  const app = await buildApp(loadConfig(ConfigSchema, dsEnv), { serviceToken: async () => h.authority.token({ sub: 'data-sharing', role: 'service' }) });
  await app.ready();
  return app;
}

beforeAll(async () => {
  h = await Harness.start();
  env = h.env({ PROJECTION_REFRESH_MS: '5000' }); // only events keep instance B current within the second
  a = await h.app(env);
  b = await h.app(env);
  await b.listen({ host: '127.0.0.1', port: 0 });
  ds = await startDataSharing(`http://127.0.0.1:${(b.server.address() as { port: number }).port}`, env.KAFKA_TOPIC_PREFIX!);
});
afterAll(async () => {
  await ds?.close();
  await h?.close();
});

async function recipient(): Promise<string> {
  const res = await ds.inject({
    method: 'POST', url: '/v1/data-sharing/admin/recipients', headers: h.bearer('op-1', 'operator'),
    payload: {
      legalName: 'Acme Logistics Ltd.', country: 'CN', contact: { department: 'Privacy office', email: 'privacy@acme.example' },
      purposes: ['sharing'], categories: ['transaction-record'], ownPolicy: { applies: true, url: 'https://acme.example/privacy' },
      attestation: { protectsNoLessThanPolicy: true, documentRef: 'DPA-7', attestedBy: 'DPO' }, webhookUrl: 'http://127.0.0.1:9/acme',
    },
  });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().recipient.id as string;
}

const share = (subjectId: string, recipientId: string) => ds.inject({
  method: 'POST', url: `/v1/data-sharing/subjects/${subjectId}/shares`, headers: h.bearer('identity', 'service'),
  payload: { recipientId, categories: ['transaction-record'] },
});

it('a withdrawal on one consent instance blocks a data-sharing request issued one second later (served by the other instance, through the client cache)', async () => {
  const subjectId = await register(a, env);
  const rid = await recipient();
  expect((await change(h, a, subjectId, [{ purpose: 'sharing', scope: { recipientId: rid }, state: 'granted' }])).statusCode).toBe(201);
  // data-sharing has asked instance B (which learnt the grant from the event) and cached "allowed".
  await waitFor(async () => (await share(subjectId, rid)).statusCode === 201, { what: 'sharing to be allowed' });
  expect((await share(subjectId, rid)).statusCode).toBe(201);

  expect((await change(h, a, subjectId, [{ purpose: 'sharing', scope: { recipientId: rid }, state: 'withdrawn' }])).statusCode).toBe(201);
  await new Promise((r) => setTimeout(r, 1000));
  const refused = await share(subjectId, rid);
  expect(refused.statusCode).toBe(403);
  expect(refused.json()).toMatchObject({ clause: '3.1.2' });
});

it('a withdrawal is as easy as the grant: one call, and a withdrawal without scope ends every consent under the purpose', async () => {
  const subjectId = await register(a, env);
  await change(h, a, subjectId, [
    { purpose: 'sharing', scope: { recipientId: 'acme' }, state: 'granted' },
    { purpose: 'sharing', scope: { recipientId: 'globex' }, state: 'granted' },
  ]);
  const res = await change(h, b, subjectId, [{ purpose: 'sharing', state: 'withdrawn' }]);
  expect(res.statusCode).toBe(201);
  expect(res.json().records.map((r: { scope?: { recipientId: string } }) => r.scope?.recipientId ?? '(purpose)').sort()).toEqual(['(purpose)', 'acme', 'globex']);
  await waitFor(() => a.projection.subject(subjectId)?.consents.get('sharing|recipient:globex')?.state === 'withdrawn', { what: 'instance A to learn the withdrawal', timeoutMs: 1000 });
});
