#!/usr/bin/env node
// `make dev`: the whole system on this machine. Starts Kafka and FerretDB (the `dev` profile) unless
// MONGO_URL and KAFKA_BROKERS point elsewhere, then every service through turbo with prefixed,
// human-readable logs, waits until each answers /readyz, and prints where everything is.
// Ctrl-C (or SIGTERM) stops the services, then the infrastructure it started.
import { spawn, spawnSync } from 'node:child_process';
import { DEV_SERVICE_PORTS as SERVICE_PORTS, DEV_SMTP_PORT, devSecrets, down, up } from '@pipp/infra';

const log = (msg) => process.stderr.write(`[dev] ${msg}\n`);

/** The environment every service gets in development (each keeps its own PORT and MONGO_DB defaults). */
export function devEnvironment(infra, secrets) {
  const url = (s) => `http://127.0.0.1:${SERVICE_PORTS[s]}`;
  // retention escalates overdue erasures to the DPO: the bootstrap DPO (secrets written before ids were
  // generated have none; then retention warns that nobody is told).
  // (Malformed JSON is identity's to report, naming the variable; here it only means no id.)
  let staff = [];
  try { staff = JSON.parse(secrets.IDENTITY_BOOTSTRAP_STAFF || '[]'); } catch { /* identity refuses it at start */ }
  const dpoIds = (Array.isArray(staff) ? staff : []).filter((s) => s?.role === 'dpo' && typeof s.id === 'string').map((s) => s.id);
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
    ...secrets,
    // data-sharing: recipients' webhooks may be local receivers in development.
    WEBHOOK_ALLOWED_HOSTS: 'localhost,127.0.0.1',
    WEBHOOK_ALLOW_LOOPBACK: 'true',
    // incident mails here; `make demo` runs a real SMTP server on it (infra/lib/local-system.mjs).
    SMTP_URL: `smtp://127.0.0.1:${DEV_SMTP_PORT}`,
    // identity sits behind the gateway on loopback: the client IP is the gateway's X-Forwarded-For.
    TRUST_PROXY: '127.0.0.1',
    ...(dpoIds.length ? { DPO_ACCOUNT_IDS: dpoIds.join(',') } : {}),
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

  // The shared packages first (the first run compiles them), so that the readiness clock below
  // measures the services starting, not the build; `turbo run dev` then finds them cached.
  log('building the shared packages …');
  const built = spawnSync('npx', ['turbo', 'run', 'build', '--filter=./apps/*^...', '--output-logs=errors-only'], { stdio: 'inherit', env });
  if (built.status !== 0) {
    log('the build failed (see above); stopping');
    if (infra.started.length) await down('dev', infra.started);
    process.exit(1);
  }
  const t1 = Date.now();

  // Own process group, so that stopping reaches turbo and every service under it.
  const turbo = spawn('npx', ['turbo', 'run', 'dev', '--filter=./apps/*', '--concurrency=16', '--log-prefix=task'], {
    stdio: 'inherit', env, detached: true,
  });
  /** True while any process of turbo's group (turbo, tsx, the services) is alive. */
  const groupAlive = () => { try { process.kill(-turbo.pid, 0); return true; } catch { return false; } };
  let stopping = false;
  const stop = async (code) => {
    if (stopping) return;
    stopping = true;
    log('stopping services …');
    // One SIGINT to the group, as Ctrl-C in a terminal does; each service closes gracefully (its
    // SHUTDOWN_TIMEOUT_MS). The infrastructure stops only once every one of them has exited.
    try { process.kill(-turbo.pid, 'SIGINT'); } catch { /* gone */ }
    const deadline = Date.now() + 20_000;
    while (groupAlive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    if (groupAlive()) {
      log('services still running after 20 s: killing them');
      try { process.kill(-turbo.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    if (infra.started.length) {
      log(`stopping ${infra.started.join(', ')} …`);
      await down('dev', infra.started);
    }
    process.exit(code);
  };
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));
  turbo.on('exit', (code) => { if (!stopping) { log(`services exited (${code}); stopping`); void stop(code || 1); } });

  const notReady = await waitReady(t1 + 180_000);
  if (notReady.length) {
    log(`not ready 3 minutes after the build: ${notReady.join(', ')} (see their logs above); stopping`);
    await stop(1);
    return;
  }
  log(`all services ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  for (const [s, port] of Object.entries(SERVICE_PORTS)) log(`  ${s.padEnd(13)} http://127.0.0.1:${port}`);
  log('  API (gateway):  http://127.0.0.1:4000/v1/…   docs: http://127.0.0.1:4000/docs');
  log(`  mail (incident): smtp://127.0.0.1:${DEV_SMTP_PORT} (\`make demo\` listens there during its run)`);
  log('Ctrl-C stops everything.');
}

main().catch(async (err) => {
  log(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
