#!/usr/bin/env node
// `make dev`: the whole system on this machine. Starts Kafka and FerretDB (the `dev` profile) unless
// MONGO_URL and KAFKA_BROKERS point elsewhere, then every service through turbo with prefixed,
// human-readable logs, waits until each answers /readyz, and prints where everything is.
// Ctrl-C (or SIGTERM) stops the services, then the infrastructure it started.
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir, down, up } from '@pipp/infra';

/** Local ports of the services (each service's config default; docs/configuration.md). */
export const SERVICE_PORTS = { gateway: 4000, identity: 4001, consent: 4002, 'data-sharing': 4003, retention: 4004, incident: 4005 };

const log = (msg) => process.stderr.write(`[dev] ${msg}\n`);

/** Secrets generated for services besides the signing key and client secrets (name → generator). */
const LATER_SECRETS = {
  CONSENT_PSEUDONYM_KEY: () => randomBytes(32).toString('base64url'),
  DATA_ENCRYPTION_KEY: () => randomBytes(32).toString('base64'),
};

/**
 * Development secrets, generated once into .cache/dev/secrets.json (never committed): identity's
 * signing key and one client secret per service for service-to-service tokens.
 */
function devSecrets() {
  const file = join(cacheDir(), 'dev', 'secrets.json');
  if (existsSync(file)) {
    const saved = JSON.parse(readFileSync(file, 'utf8'));
    // Secrets added since the file was written (consent's pseudonym key, data-sharing's encryption key)
    // are generated once, kept after.
    const missing = Object.keys(LATER_SECRETS).filter((k) => !saved[k]);
    if (!missing.length) return saved;
    for (const k of missing) saved[k] = LATER_SECRETS[k]();
    writeFileSync(file, JSON.stringify(saved, null, 2), { mode: 0o600 });
    return saved;
  }
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const secrets = {
    IDENTITY_SIGNING_KEY: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    SERVICE_CLIENT_SECRETS: Object.fromEntries(Object.keys(SERVICE_PORTS).map((s) => [s, randomBytes(24).toString('base64url')])),
    // The first data-protection officer (identity creates it at start); sign in at
    // POST /v1/identity/public/staff/sign-in with this number and password (see secrets.json).
    IDENTITY_BOOTSTRAP_STAFF: [{ phone: '+8613800000001', role: 'dpo', displayName: 'Local DPO', password: `dpo-${randomBytes(12).toString('base64url')}-local` }],
    ...Object.fromEntries(Object.entries(LATER_SECRETS).map(([k, make]) => [k, make()])),
  };
  mkdirSync(join(cacheDir(), 'dev'), { recursive: true });
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

/** The environment every service gets in development (each keeps its own PORT and MONGO_DB defaults). */
export function devEnvironment(infra, secrets) {
  const url = (s) => `http://127.0.0.1:${SERVICE_PORTS[s]}`;
  return {
    NODE_ENV: 'development',
    LOG_FORMAT: process.env.LOG_FORMAT ?? 'pretty',
    MONGO_URL: infra.MONGO_URL,
    KAFKA_BROKERS: infra.KAFKA_BROKERS,
    AUTH_JWKS_URL: `${url('identity')}/v1/identity/.well-known/jwks.json`,
    IDENTITY_URL: url('identity'),
    CONSENT_URL: url('consent'),
    DATA_SHARING_URL: url('data-sharing'),
    RETENTION_URL: url('retention'),
    INCIDENT_URL: url('incident'),
    IDENTITY_SIGNING_KEY: secrets.IDENTITY_SIGNING_KEY,
    SERVICE_CLIENT_SECRETS: JSON.stringify(secrets.SERVICE_CLIENT_SECRETS),
    IDENTITY_BOOTSTRAP_STAFF: JSON.stringify(secrets.IDENTITY_BOOTSTRAP_STAFF ?? []),
    CONSENT_PSEUDONYM_KEY: secrets.CONSENT_PSEUDONYM_KEY,
    // data-sharing: sealing key, and recipients' webhooks may be local test receivers in development.
    DATA_ENCRYPTION_KEY: secrets.DATA_ENCRYPTION_KEY,
    WEBHOOK_ALLOWED_HOSTS: 'localhost,127.0.0.1',
    WEBHOOK_ALLOW_LOOPBACK: 'true',
  };
}

async function waitReady(deadlineMs) {
  const pending = new Set(Object.keys(SERVICE_PORTS));
  while (pending.size && Date.now() < deadlineMs) {
    for (const s of [...pending]) {
      const ok = await fetch(`http://127.0.0.1:${SERVICE_PORTS[s]}/readyz`, { signal: AbortSignal.timeout(1000) })
        .then((r) => r.ok, () => false);
      if (ok) pending.delete(s);
    }
    if (pending.size) await new Promise((r) => setTimeout(r, 500));
  }
  return [...pending];
}

async function main() {
  const t0 = Date.now();
  const external = Boolean(process.env.MONGO_URL && process.env.KAFKA_BROKERS);
  const infra = external ? { MONGO_URL: process.env.MONGO_URL, KAFKA_BROKERS: process.env.KAFKA_BROKERS, started: [] } : await up('dev');
  log(`infrastructure: MONGO_URL=${infra.MONGO_URL} KAFKA_BROKERS=${infra.KAFKA_BROKERS}${external ? ' (external)' : ''}`);
  const env = { ...process.env, ...devEnvironment(infra, devSecrets()) };

  // Own process group, so that stopping reaches turbo and every service under it.
  const turbo = spawn('npx', ['turbo', 'run', 'dev', '--filter=./apps/*', '--concurrency=16', '--log-prefix=task'], {
    stdio: 'inherit', env, detached: true,
  });
  let stopping = false;
  const stop = async (code) => {
    if (stopping) return;
    stopping = true;
    log('stopping services …');
    try { process.kill(-turbo.pid, 'SIGTERM'); } catch { /* gone */ }
    const timer = setTimeout(() => { try { process.kill(-turbo.pid, 'SIGKILL'); } catch { /* gone */ } }, 15_000);
    await new Promise((r) => (turbo.exitCode !== null || turbo.signalCode !== null ? r() : turbo.once('exit', r)));
    clearTimeout(timer);
    if (infra.started.length) {
      log(`stopping ${infra.started.join(', ')} …`);
      await down('dev', infra.started);
    }
    process.exit(code);
  };
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));
  turbo.on('exit', (code) => { if (!stopping) { log(`services exited (${code}); stopping`); void stop(code || 1); } });

  const notReady = await waitReady(Date.now() + 180_000);
  if (notReady.length) {
    log(`not ready after 3 minutes: ${notReady.join(', ')} (see their logs above); stopping`);
    await stop(1);
    return;
  }
  log(`all services ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  for (const [s, port] of Object.entries(SERVICE_PORTS)) log(`  ${s.padEnd(13)} http://127.0.0.1:${port}`);
  log('  API (gateway):  http://127.0.0.1:4000/v1/…   docs: http://127.0.0.1:4000/docs');
  log('Ctrl-C stops everything.');
}

main().catch(async (err) => {
  log(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
