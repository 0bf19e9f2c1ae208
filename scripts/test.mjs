#!/usr/bin/env node
// `make test`: builds, typechecks and lints every package, then runs the whole suite (unit, integration and
// end-to-end tests) in one vitest run against the real Kafka broker and FerretDB.
// - With MONGO_URL and KAFKA_BROKERS set, tests use that deployment as it is.
// - Otherwise the local `test` profile is used: reused when already running (a developer's loop),
//   else built if needed, started on fresh data, and stopped afterwards (PIPP_KEEP_INFRA=1 keeps it).
// Extra arguments go to vitest (e.g. `npm test -- --project consent`).
import { spawn } from 'node:child_process';
import { down, status, up, wipe } from '@pipp/infra';

const run = (cmd, args, env = process.env) => new Promise((resolve) => {
  const child = spawn(cmd, args, { stdio: 'inherit', env });
  child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
});

async function main() {
  const built = await run('npx', ['turbo', 'run', 'build', 'typecheck', 'lint', '--output-logs=errors-only']);
  if (built !== 0) return built;

  let started = [];
  const env = { ...process.env };
  if (!env.MONGO_URL || !env.KAFKA_BROKERS) {
    const running = (await status('test')).every((s) => s.pid);
    if (!running) await wipe('test'); // a clean slate when we start it ourselves
    const infra = await up('test');
    started = infra.started;
    env.MONGO_URL = infra.MONGO_URL;
    env.KAFKA_BROKERS = infra.KAFKA_BROKERS;
  }
  try {
    return await run('npx', ['vitest', 'run', ...process.argv.slice(2)], env);
  } finally {
    if (started.length && process.env.PIPP_KEEP_INFRA !== '1') await down('test', started);
  }
}

main().then((code) => { process.exitCode = code; }, (err) => {
  console.error(`[test] ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
