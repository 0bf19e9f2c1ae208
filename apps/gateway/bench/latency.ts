// Latency breakdown (not a test, not the benchmark): 100 sequential requests each, direct to a
// real upstream and through the real gateway, with the time from the gateway's onRequest to its
// preHandler (checks), onSend (upstream answered) and onResponse. Useful to see where a request's time
// goes; absolute figures depend on the machine's load.
//   MONGO_URL=… KAFKA_BROKERS=… npx tsx apps/gateway/bench/latency.ts
import { TestAuthority, uniqueId, dropDatabase } from '@pipp/testing';
import { loadConfig } from '@pipp/service-kit';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { buildApp } from '../src/app.js';
import { ConfigSchema } from '../src/config.js';
import { startUpstream } from '../test/fixtures/upstream.js';
const a = await TestAuthority.start();
const up = await startUpstream('consent', { jwksUrl: a.jwksUrl });
const db = `lat_${uniqueId()}`;
const app = await buildApp(loadConfig(ConfigSchema, { ...process.env, AUTH_JWKS_URL: a.jwksUrl, MONGO_DB: db, KAFKA_TOPIC_PREFIX: `lat.${uniqueId()}.`, LOG_LEVEL: 'warn', CONSENT_URL: up.url, RATE_LIMIT_IP_MAX: '1000000', RATE_LIMIT_SUBJECT_MAX: '1000000', PORT: '0' }));
const marks: Record<string, number[]> = {};
const mark = (k: string, v: number) => { (marks[k] ??= []).push(v); };
app.addHook('onRequest', async (req) => { (req as unknown as { t0: number }).t0 = performance.now(); });
app.addHook('preHandler', async (req) => { mark('toPreHandler', performance.now() - (req as unknown as { t0: number }).t0); });
app.addHook('onSend', async (req) => { mark('toOnSend', performance.now() - (req as unknown as { t0: number }).t0); });
app.addHook('onResponse', async (req) => { mark('toOnResponse', performance.now() - (req as unknown as { t0: number }).t0); });
await app.listen({ port: 0, host: '127.0.0.1' });
const gw = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
const token = a.token({ sub: 'svc', role: 'service', expiresInS: 3600 });
const h = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
const body = JSON.stringify({ subjectId: 'x1', purpose: 'p' });
async function time(label: string, f: () => Promise<unknown>) {
  for (let i = 0; i < 20; i++) await f();
  const t = performance.now();
  for (let i = 0; i < 100; i++) await f();
  console.log(label.padEnd(40), ((performance.now() - t) / 100).toFixed(2), 'ms', Object.entries(marks).map(([k, v]) => `${k}=${(v.slice(-100).reduce((x, y) => x + y, 0) / Math.min(100, v.length)).toFixed(2)}`).join(' '));
  for (const k of Object.keys(marks)) delete marks[k];
}
const call = (base: string, method: 'GET' | 'POST', path: string, withBody: boolean, headers: Record<string, string> = h) => async () => {
  const r = await request(`${base}${path}`, { method, headers, ...(withBody ? { body } : {}) });
  await r.body.text();
  if (r.statusCode >= 300) throw new Error(`${r.statusCode}`);
};
await time('direct POST decisions', call(up.url, 'POST', '/v1/consent/decisions', true));
await time('gateway POST decisions', call(gw, 'POST', '/v1/consent/decisions', true));
await time('direct GET echo-headers (auth)', call(up.url, 'GET', '/v1/consent/echo-headers', false));
await time('gateway GET echo-headers (auth)', call(gw, 'GET', '/v1/consent/echo-headers', false));
await time('gateway GET public policy', call(gw, 'GET', '/v1/consent/public/policy', false, {}));
await time('gateway POST public sign-in', async () => { const r = await request(`${gw}/v1/consent/public/sign-in`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"phone":"1","code":"2"}' }); await r.body.text(); });
await app.close(); await up.close(); await a.close(); await dropDatabase(db);
