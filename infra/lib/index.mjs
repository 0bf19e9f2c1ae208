// Local infrastructure for development and tests, on a machine without a Docker engine:
// - the real Apache Kafka broker, run from its Maven Central jars in single-node KRaft mode;
// - FerretDB v1.24 (MongoDB wire protocol over SQLite), built from its Go module by infra/ferretdb.
// Everything built is cached under .cache/ (or $PIPP_CACHE_DIR), keyed by a hash of its recipe, so
// a second run is a no-op. Processes run detached with pid files, so `up` returns and `down` stops them.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const infraDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = resolve(infraDir, '..');

/** Root of every cached artifact and state folder: $PIPP_CACHE_DIR or <repo>/.cache. */
export function cacheDir() {
  return process.env.PIPP_CACHE_DIR ? resolve(process.env.PIPP_CACHE_DIR) : join(repoRoot, '.cache');
}

/**
 * Port layouts. `dev` is what `make dev` runs; `test` is what the test suite's global setup runs, so
 * a developer's running system and the tests never share topics or databases. Each port can be
 * overridden by PIPP_KAFKA_PORT, PIPP_KAFKA_CONTROLLER_PORT and PIPP_MONGO_PORT.
 * @type {Record<string, {kafkaPort: number, controllerPort: number, mongoPort: number}>}
 */
export const profiles = {
  dev: { kafkaPort: 9092, controllerPort: 9093, mongoPort: 27017 },
  test: { kafkaPort: 19092, controllerPort: 19093, mongoPort: 27018 },
};

/** @param {string} profile */
export function profileConfig(profile) {
  const base = profiles[profile];
  if (!base) throw new Error(`unknown infrastructure profile "${profile}" (known: ${Object.keys(profiles).join(', ')})`);
  const num = (/** @type {string} */ name, /** @type {number} */ fallback) => {
    const raw = process.env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${name} must be a TCP port, got "${raw}"`);
    return n;
  };
  return {
    kafkaPort: num('PIPP_KAFKA_PORT', base.kafkaPort),
    controllerPort: num('PIPP_KAFKA_CONTROLLER_PORT', base.controllerPort),
    mongoPort: num('PIPP_MONGO_PORT', base.mongoPort),
    stateDir: join(cacheDir(), 'infra', profile),
  };
}

const log = (/** @type {string} */ msg) => process.stderr.write(`[infra] ${msg}\n`);

// ---------------------------------------------------------------------------------------------
// Building (idempotent, cached, safe to call from several processes at once)

/** @param {string[]} files */
function hashFiles(files) {
  const h = createHash('sha256');
  for (const f of files) h.update(readFileSync(f));
  return h.digest('hex').slice(0, 12);
}

/**
 * Runs fn while holding an exclusive lock (a directory), so that parallel test processes build once.
 * @template T @param {string} name @param {() => Promise<T>} fn @returns {Promise<T>}
 */
async function withLock(name, fn) {
  const dir = join(cacheDir(), 'locks', name);
  mkdirSync(dirname(dir), { recursive: true });
  const deadline = Date.now() + 20 * 60_000;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'EEXIST') throw err;
      const owner = Number(readFileOr(join(dir, 'pid'), '0'));
      if (owner && !isAlive(owner)) { rmSync(dir, { recursive: true, force: true }); continue; }
      if (Date.now() > deadline) throw new Error(`timed out waiting for the build lock ${dir}`, { cause: err });
      await sleep(500);
    }
  }
  try { return await fn(); } finally { rmSync(dir, { recursive: true, force: true }); }
}

/**
 * Runs a build command, streaming nothing unless it fails; then the error carries its output tail.
 * @param {string} cmd @param {string[]} args @param {import('node:child_process').SpawnSyncOptions} opts
 */
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.error) throw new Error(`${cmd} could not be started: ${r.error.message}`);
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim().split('\n').slice(-40).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}):\n${out}`);
  }
  return String(r.stdout ?? '');
}

/** Kafka version resolved by infra/kafka/pom.xml. */
export function kafkaVersion() {
  const m = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(readFileSync(join(infraDir, 'kafka', 'pom.xml'), 'utf8'));
  if (!m?.[1]) throw new Error('infra/kafka/pom.xml has no <kafka.version> property');
  return m[1];
}

/**
 * Resolves the broker's jars from Maven Central into the cache (about 50 MB, once).
 * @returns {Promise<string>} the folder holding the jars
 */
export async function ensureKafka() {
  const pom = join(infraDir, 'kafka', 'pom.xml');
  const target = join(cacheDir(), `kafka-${kafkaVersion()}-${hashFiles([pom])}`);
  const lib = join(target, 'lib');
  if (existsSync(join(target, '.complete'))) return lib;
  return withLock('kafka', async () => {
    if (existsSync(join(target, '.complete'))) return lib;
    log(`resolving Apache Kafka ${kafkaVersion()} jars from Maven Central into ${target}`);
    const tmp = `${target}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    run('mvn', ['-B', '-q', '-f', pom, 'dependency:copy-dependencies', '-DincludeScope=runtime',
      `-DoutputDirectory=${join(tmp, 'lib')}`]);
    writeFileSync(join(tmp, '.complete'), new Date().toISOString());
    rmSync(target, { recursive: true, force: true });
    renameSync(tmp, target);
    return lib;
  });
}

/**
 * Builds infra/ferretdb (our main embedding FerretDB's package) into the cache, once per recipe.
 * The first build downloads FerretDB's module graph through the Go module proxy and takes minutes.
 * @returns {Promise<string>} the binary's path
 */
export async function ensureFerret() {
  const src = join(infraDir, 'ferretdb');
  const key = hashFiles(['go.mod', 'go.sum', ...readdirSync(src).filter((f) => f.endsWith('.go')).sort()].map((f) => join(src, f)));
  const bin = join(cacheDir(), 'bin', `ferretdb-local-${key}`);
  if (existsSync(bin)) return bin;
  return withLock('ferretdb', async () => {
    if (existsSync(bin)) return bin;
    log(`building FerretDB (Go module, first time takes a few minutes) into ${bin}`);
    mkdirSync(dirname(bin), { recursive: true });
    const tmp = `${bin}.tmp-${process.pid}`;
    run('go', ['build', '-trimpath', '-o', tmp, '.'], {
      cwd: src,
      env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' },
    });
    renameSync(tmp, bin);
    return bin;
  });
}

// ---------------------------------------------------------------------------------------------
// Processes

/** @param {number} ms */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** @param {string} file @param {string} fallback */
function readFileOr(file, fallback) {
  try { return readFileSync(file, 'utf8').trim(); } catch { return fallback; }
}

/** @param {number} pid */
function isAlive(pid) {
  try { process.kill(pid, 0); return true; } catch (err) { return /** @type {NodeJS.ErrnoException} */ (err).code === 'EPERM'; }
}

/** Resolves true when something accepts TCP connections on 127.0.0.1:port. @param {number} port */
export function portOpen(port, timeoutMs = 500) {
  return new Promise((res) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (/** @type {boolean} */ ok) => { s.destroy(); res(ok); };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** @param {string} file @param {number} lines */
export function tail(file, lines = 30) {
  return readFileOr(file, '(no log)').split('\n').slice(-lines).join('\n');
}

/**
 * Starts a detached process whose stdout and stderr go to logFile and records its pid.
 * @param {string} name @param {string} cmd @param {string[]} args @param {{pidFile: string, logFile: string, cwd?: string}} o
 */
function startDetached(name, cmd, args, { pidFile, logFile, cwd }) {
  mkdirSync(dirname(logFile), { recursive: true });
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { cwd, detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  if (!child.pid) throw new Error(`${name} could not be started (${cmd})`);
  child.unref();
  writeFileSync(pidFile, String(child.pid));
  return child.pid;
}

/**
 * Stops the process recorded in pidFile: SIGTERM, then SIGKILL after graceMs.
 * @param {string} pidFile @param {number} graceMs @returns {Promise<boolean>} whether one was running
 */
export async function stopPidFile(pidFile, graceMs = 20_000) {
  const pid = Number(readFileOr(pidFile, '0'));
  if (!pid || !isAlive(pid)) { rmSync(pidFile, { force: true }); return false; }
  try { process.kill(pid, 'SIGTERM'); } catch { /* already gone */ }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  while (isAlive(pid)) await sleep(50);
  rmSync(pidFile, { force: true });
  return true;
}

/**
 * Waits until check() resolves true, failing fast if the process died.
 * @param {string} what @param {{pid: number, logFile: string, timeoutMs: number, check: () => Promise<boolean>}} o
 */
async function waitReady(what, { pid, logFile, timeoutMs, check }) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) throw new Error(`${what} exited during start-up; its log is ${logFile}:\n${tail(logFile)}`);
    if (await check().catch((err) => {
      // A missing driver is not a slow start: say so at once instead of waiting out the deadline.
      if (err?.code === 'ERR_MODULE_NOT_FOUND') throw new Error(`${what}: cannot probe readiness without the npm dependencies (${err.message}); run \`npm ci\` first (make dev and make test do)`);
      return false;
    })) return;
    await sleep(250);
  }
  throw new Error(`${what} was not ready within ${timeoutMs / 1000} s; its log is ${logFile}:\n${tail(logFile)}`);
}

// ---------------------------------------------------------------------------------------------
// Readiness probes (real protocol round trips, not just an open port)

/** @param {string} brokers comma-separated host:port list */
export async function kafkaReady(brokers, timeoutMs = 3000) {
  const { Kafka, logLevel } = (await import('kafkajs')).default;
  const kafka = new Kafka({
    clientId: 'pipp-infra-probe', brokers: brokers.split(','), logLevel: logLevel.NOTHING,
    connectionTimeout: timeoutMs, requestTimeout: timeoutMs, retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null && cluster.controller >= 0;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** @param {string} url a mongodb:// URL */
export async function mongoReady(url, timeoutMs = 3000) {
  const { MongoClient } = await import('mongodb');
  const client = new MongoClient(url, { serverSelectionTimeoutMS: timeoutMs, connectTimeoutMS: timeoutMs });
  try {
    await client.connect();
    const r = await client.db('admin').command({ ping: 1 });
    return r.ok === 1;
  } catch {
    return false;
  } finally {
    await client.close().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Kafka broker

/** A Kafka cluster id: 16 random bytes in URL-safe base64, not starting with '-' (as Kafka's Uuid). */
function kafkaClusterId() {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/**
 * Starts (or reuses) a single-node KRaft broker on 127.0.0.1.
 * @param {{stateDir: string, port: number, controllerPort: number, heapMb?: number, timeoutMs?: number}} o
 * @returns {Promise<{brokers: string, pidFile: string, logFile: string, reused: boolean}>}
 */
export async function startKafka({ stateDir, port, controllerPort, heapMb = 512, timeoutMs = 90_000 }) {
  const dir = join(stateDir, 'kafka');
  const pidFile = join(dir, 'kafka.pid');
  const logFile = join(dir, 'kafka.log');
  const brokers = `127.0.0.1:${port}`;
  const running = Number(readFileOr(pidFile, '0'));
  if (running && isAlive(running)) {
    await waitReady(`Kafka (pid ${running}, ${brokers})`, { pid: running, logFile, timeoutMs, check: () => kafkaReady(brokers) });
    return { brokers, pidFile, logFile, reused: true };
  }
  if (await portOpen(port)) {
    throw new Error(`port ${port} is already taken by another program, so the local Kafka cannot start there; `
      + `stop it, choose another with PIPP_KAFKA_PORT, or point the system at it with KAFKA_BROKERS=${brokers}`);
  }
  const lib = await ensureKafka();
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const props = join(dir, 'server.properties');
  writeFileSync(props, [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${dataDir}`,
    'num.partitions=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=1',
    'group.initial.rebalance.delay.ms=0',
    // Services create their topics (with their partition counts) through the admin client.
    'auto.create.topics.enable=false',
    'num.network.threads=2',
    'num.io.threads=2',
    'log.cleaner.dedupe.buffer.size=33554432',
    '',
  ].join('\n'));
  const classpath = `${lib}/*`;
  const log4j = `-Dlog4j.configuration=file:${join(infraDir, 'kafka', 'log4j.properties')}`;
  if (!existsSync(join(dataDir, 'meta.properties'))) {
    run('java', [log4j, '-cp', classpath, 'kafka.tools.StorageTool', 'format',
      '-t', kafkaClusterId(), '-c', props, '--ignore-formatted']);
  }
  const pid = startDetached('Kafka', 'java', [
    `-Xms${Math.min(256, heapMb)}m`, `-Xmx${heapMb}m`, '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20',
    '-XX:InitiatingHeapOccupancyPercent=35', '-XX:+ExplicitGCInvokesConcurrent', '-XX:TieredStopAtLevel=1',
    '-Djava.awt.headless=true', log4j, '-cp', classpath, 'kafka.Kafka', props,
  ], { pidFile, logFile });
  log(`Kafka ${kafkaVersion()} starting on ${brokers} (pid ${pid}, log ${logFile})`);
  await waitReady(`Kafka on ${brokers}`, { pid, logFile, timeoutMs, check: () => kafkaReady(brokers) });
  return { brokers, pidFile, logFile, reused: false };
}

// ---------------------------------------------------------------------------------------------
// FerretDB

/**
 * Starts (or reuses) FerretDB serving the MongoDB wire protocol on 127.0.0.1, storing into SQLite.
 * @param {{stateDir: string, port: number, timeoutMs?: number}} o
 * @returns {Promise<{url: string, pidFile: string, logFile: string, reused: boolean}>}
 */
export async function startFerret({ stateDir, port, timeoutMs = 60_000 }) {
  const dir = join(stateDir, 'ferretdb');
  const pidFile = join(dir, 'ferretdb.pid');
  const logFile = join(dir, 'ferretdb.log');
  const url = `mongodb://127.0.0.1:${port}`;
  const running = Number(readFileOr(pidFile, '0'));
  if (running && isAlive(running)) {
    await waitReady(`FerretDB (pid ${running}, ${url})`, { pid: running, logFile, timeoutMs, check: () => mongoReady(url) });
    return { url, pidFile, logFile, reused: true };
  }
  if (await portOpen(port)) {
    throw new Error(`port ${port} is already taken by another program, so the local FerretDB cannot start there; `
      + `stop it, choose another with PIPP_MONGO_PORT, or point the system at it with MONGO_URL=${url}`);
  }
  const bin = await ensureFerret();
  mkdirSync(join(dir, 'data'), { recursive: true });
  const pid = startDetached('FerretDB', bin, ['-listen', `127.0.0.1:${port}`, '-data-dir', join(dir, 'data')], { pidFile, logFile });
  log(`FerretDB starting on ${url} (pid ${pid}, log ${logFile})`);
  await waitReady(`FerretDB on ${url}`, { pid, logFile, timeoutMs, check: () => mongoReady(url) });
  return { url, pidFile, logFile, reused: false };
}

// ---------------------------------------------------------------------------------------------
// Both together

/**
 * Starts (or reuses) Kafka and FerretDB for a profile, in parallel.
 * @param {string} profile 'dev' or 'test'
 * @returns {Promise<{MONGO_URL: string, KAFKA_BROKERS: string, started: string[]}>}
 */
export async function up(profile) {
  const cfg = profileConfig(profile);
  // Build both first (in parallel), so a failing build is reported before anything starts.
  await Promise.all([ensureKafka(), ensureFerret()]);
  const [k, f] = await Promise.all([
    startKafka({ stateDir: cfg.stateDir, port: cfg.kafkaPort, controllerPort: cfg.controllerPort }),
    startFerret({ stateDir: cfg.stateDir, port: cfg.mongoPort }),
  ]);
  const started = [!k.reused && 'kafka', !f.reused && 'ferretdb'].filter((x) => typeof x === 'string');
  return { MONGO_URL: f.url, KAFKA_BROKERS: k.brokers, started };
}

/**
 * Stops the profile's processes (SIGTERM, then SIGKILL after 20 s).
 * @param {string} profile @param {string[]} [which] subset of ['kafka', 'ferretdb']
 */
export async function down(profile, which = ['kafka', 'ferretdb']) {
  const { stateDir } = profileConfig(profile);
  const stopped = [];
  for (const name of which) {
    if (await stopPidFile(join(stateDir, name, `${name}.pid`))) stopped.push(name);
  }
  return stopped;
}

/** Deletes the profile's data (stopping it first). @param {string} profile */
export async function wipe(profile) {
  await down(profile);
  const { stateDir } = profileConfig(profile);
  rmSync(stateDir, { recursive: true, force: true });
}

/** @param {string} profile */
export async function status(profile) {
  const cfg = profileConfig(profile);
  const one = async (/** @type {string} */ name, /** @type {number} */ port) => {
    const pid = Number(readFileOr(join(cfg.stateDir, name, `${name}.pid`), '0'));
    return { name, pid: pid && isAlive(pid) ? pid : null, port, listening: await portOpen(port),
      log: join(cfg.stateDir, name, `${name}.log`) };
  };
  return [await one('kafka', cfg.kafkaPort), await one('ferretdb', cfg.mongoPort)];
}

export { SECRET_GENERATORS, completeSecrets, localSecrets } from './secrets.mjs';
export { DEV_SERVICE_PORTS, DEV_SMTP_PORT, devSecrets } from './local-system.mjs';
