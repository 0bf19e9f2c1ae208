#!/usr/bin/env node
// One service under `make dev` (each app's `dev` script: `node ../../scripts/dev-service.mjs src/server.ts`,
// run from the app's folder). It restarts the service when its sources or the build of a workspace
// package it imports change, as `tsx watch` did, and also when the service exits on its own: under
// `tsx watch` a crashed service stayed down, silently, until a file changed (tsx issue #754). Crash restarts back off from 1 s
// to 30 s, and start again from 1 s once the service has run for 30 s.
// SIGINT or SIGTERM (Ctrl-C reaches the whole process group) stops the service and then this process.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, watch } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const entry = process.argv[2];
if (!entry) {
  process.stderr.write('usage: node scripts/dev-service.mjs <entry, e.g. src/server.ts>\n');
  process.exit(2);
}
const name = basename(process.cwd());
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const log = (msg) => process.stderr.write(`[dev] ${name}: ${msg}\n`);

const BACKOFF_MAX_MS = 30_000;
/** A run this long counts as healthy: the next crash restarts after 1 s again. */
const HEALTHY_RUN_MS = 30_000;

let child;
let startedAt = 0;
let backoffMs = 1000;
let stopping = false;
let restartTimer;

function start() {
  restartTimer = undefined;
  startedAt = Date.now();
  child = spawn(process.execPath, ['--import', 'tsx', entry], { stdio: 'inherit', env: process.env });
  const current = child;
  current.on('exit', (code, signal) => {
    if (child !== current || stopping) return; // replaced by a restart for a change, or stopping
    child = undefined;
    if (Date.now() - startedAt >= HEALTHY_RUN_MS) backoffMs = 1000;
    log(`exited (${signal ?? `code ${code}`}); restarting in ${backoffMs / 1000} s`);
    restartTimer = setTimeout(start, backoffMs);
    backoffMs = Math.min(BACKOFF_MAX_MS, backoffMs * 2);
  });
}

/** Stops the running service (SIGTERM, then SIGKILL after 10 s) and resolves once it exited. */
function stopChild() {
  const current = child;
  if (!current) return Promise.resolve();
  child = undefined;
  return new Promise((done) => {
    const kill = setTimeout(() => current.kill('SIGKILL'), 10_000);
    current.once('exit', () => { clearTimeout(kill); done(); });
    current.kill('SIGTERM');
  });
}

let changeTimer;
let restarting = Promise.resolve();
function changed(what) {
  if (stopping) return;
  clearTimeout(changeTimer);
  changeTimer = setTimeout(() => {
    restarting = restarting.then(async () => {
      if (stopping) return;
      log(`${what} changed; restarting`);
      clearTimeout(restartTimer);
      await stopChild();
      backoffMs = 1000;
      if (!stopping) start();
    });
  }, 300);
}

/**
 * The folders under packages/ of the workspace packages this service depends on, directly or through
 * another: only their builds restart it (`make demo` building packages/demo had restarted all six).
 */
function workspaceDependencies() {
  const manifest = (dir) => {
    const file = join(dir, 'package.json');
    return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  };
  const byName = new Map(readdirSync(join(root, 'packages')).map((dir) => [manifest(join(root, 'packages', dir)).name, dir]));
  const dirs = new Set();
  const visit = ({ dependencies = {} }) => {
    for (const name of Object.keys(dependencies)) {
      const dir = byName.get(name);
      if (dir && !dirs.has(dir)) { dirs.add(dir); visit(manifest(join(root, 'packages', dir))); }
    }
  };
  visit(manifest(process.cwd()));
  return dirs;
}

// The service's own sources, and the compiled JavaScript of the shared packages it imports.
const dependencies = workspaceDependencies();
watch(join(process.cwd(), 'src'), { recursive: true }, (_event, file) => changed(`src/${file ?? ''}`));
watch(join(root, 'packages'), { recursive: true }, (_event, file) => {
  const m = file && /^([^/]+)\/dist\/.+\.js$/.exec(file);
  if (m && dependencies.has(m[1])) changed(`packages/${file}`);
});

const shutdown = () => {
  if (stopping) return;
  stopping = true;
  clearTimeout(changeTimer);
  clearTimeout(restartTimer);
  const current = child;
  if (!current) process.exit(0);
  // Ctrl-C, and turbo stopping its tasks, signal the whole process group: the service got the same
  // signal and is closing gracefully (a second one would make it exit at once, close-with-grace). Only
  // when it is still running past its own shutdown bound (SHUTDOWN_TIMEOUT_MS, 10 s by default; or the
  // signal was for this process alone) is it stopped from here.
  current.once('exit', () => process.exit(0));
  setTimeout(() => { void stopChild(); }, Number(process.env.SHUTDOWN_TIMEOUT_MS ?? 10_000) + 2_000).unref();
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);

start();
