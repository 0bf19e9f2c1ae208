// Benchmark of identity's hot paths, in-process (inject) on the real database and broker:
// the JWKS read (baseline: no database, no hashing), refresh-token rotation, password sign-in
// (argon2id verify + risk + session), and a failed sign-in of an unknown number (the throwaway
// argon2 check). Prints ms per operation and the ratio to the baseline measured in the same run.
// Run: MONGO_URL=… KAFKA_BROKERS=… npx tsx apps/identity/bench/sign-in.ts
import { loadConfig } from '@pipp/service-kit';
import { randomUUID, generateKeyPairSync } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { buildApp } from '../src/app.js';
import { ConfigSchema } from '../src/config.js';

const N = Number(process.env.BENCH_N ?? 30);
const db = `bench_identity_${randomUUID().slice(0, 8)}`;
const env = {
  NODE_ENV: 'test', LOG_LEVEL: 'silent', PORT: '0', MONGO_URL: process.env.MONGO_URL ?? 'mongodb://127.0.0.1:27018',
  KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:19092', MONGO_DB: db, KAFKA_TOPIC_PREFIX: `bench.${randomUUID().slice(0, 8)}.`, KAFKA_PARTITIONS: '1',
  IDENTITY_SIGNING_KEY: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  SERVICE_CLIENT_SECRETS: '{}', OTP_RESEND_INTERVAL_S: '0', OTP_MAX_PER_IP_PER_HOUR: '10000', OTP_MAX_PER_NUMBER_PER_HOUR: '100',
  SIGNIN_LOCK_THRESHOLD: '100', SIGNIN_DELAY_BASE_MS: '0', SIGNIN_DELAY_MAX_MS: '0',
};
const app = await buildApp(loadConfig(ConfigSchema, env));
await app.ready();
const mongo = new MongoClient(env.MONGO_URL);
await mongo.connect();
try {
  const phone = '+8613900001234';
  const password = 'violet-harbour-quietly-73-lanterns';
  await app.inject({ method: 'POST', url: '/v1/identity/public/codes', payload: { phone, purpose: 'register' } });
  const sms = await mongo.db(db).collection('sms_sink').findOne({ to: phone });
  const code = /\b(\d{6})\b/.exec(String(sms?.text))![1];
  const reg = await app.inject({ method: 'POST', url: '/v1/identity/public/registrations', headers: { 'user-agent': 'bench' }, payload: { phone, code, password, deviceId: 'bench-device-1', policyAcknowledged: { documentId: 'general', version: 1 } } });
  let refresh = reg.json().refreshToken as string;

  async function measure(name: string, op: () => Promise<unknown>) {
    await op();
    const t = performance.now();
    for (let i = 0; i < N; i += 1) await op();
    return { name, ms: (performance.now() - t) / N };
  }
  const results = [
    await measure('GET jwks (baseline)', () => app.inject({ url: '/v1/identity/.well-known/jwks.json' })),
    await measure('refresh rotation', async () => { refresh = (await app.inject({ method: 'POST', url: '/v1/identity/public/tokens/refresh', payload: { refreshToken: refresh } })).json().refreshToken; }),
    await measure('password sign-in', () => app.inject({ method: 'POST', url: '/v1/identity/public/sign-in', headers: { 'user-agent': 'bench' }, payload: { phone, password, deviceId: 'bench-device-1' } })),
    await measure('failed sign-in, unknown number', () => app.inject({ method: 'POST', url: '/v1/identity/public/sign-in', payload: { phone: '+8613900009999', password } })),
  ];
  const base = results[0]!.ms;
  for (const r of results) process.stdout.write(`${r.name.padEnd(34)} ${r.ms.toFixed(2).padStart(8)} ms/op   ×${(r.ms / base).toFixed(1)} baseline\n`);
} finally {
  await app.close();
  await mongo.db(db).dropDatabase();
  await mongo.close();
}
