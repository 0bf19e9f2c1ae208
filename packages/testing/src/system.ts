import { SERVICES, type ServiceName } from '@pipp/contracts';
import { localSecrets } from '@pipp/infra';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runPrefixes, uniqueId } from './env.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** Environment variable holding a service's base URL, e.g. DATA_SHARING_URL. */
export const urlVariable = (s: ServiceName) => `${s.replace('-', '_').toUpperCase()}_URL`;

/** A loopback port free at the time of the call (nothing listens on it once this resolves). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.once('error', reject);
  });
}

export interface SystemOptions {
  /** Services to run (default: all six). */
  services?: ServiceName[];
  /** Extra environment for every service, or per service. */
  env?: Record<string, string>;
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  /** How long to wait for every /readyz (ms, default 120 000). */
  readyTimeoutMs?: number;
}

interface Proc { child: ChildProcess; log: string }

/**
 * The whole platform as real processes (each service's built `dist/server.js`) on loopback, against
 * the shared test Kafka and FerretDB: free ports, one topic prefix for the system, one database per
 * service, generated signing key and service client secrets. What `make dev` runs, isolated for a
 * test; `stop`, `kill` and `restart` let reliability tests take services down mid-flight.
 */
export class RunningSystem {
  private readonly procs = new Map<ServiceName, Proc>();
  readonly logDir = mkdtempSync(join(tmpdir(), 'pipp-system-'));

  private constructor(
    readonly services: ServiceName[],
    readonly ports: Record<ServiceName, number>,
    readonly env: Record<string, string>,
    private readonly serviceEnv: Partial<Record<ServiceName, Record<string, string>>>,
  ) {}

  static async start(opts: SystemOptions = {}): Promise<RunningSystem> {
    const services = opts.services ?? [...SERVICES];
    const ports = {} as Record<ServiceName, number>;
    for (const s of SERVICES) ports[s] = await freePort();
    const id = uniqueId('e');
    const env: Record<string, string> = {
      NODE_ENV: 'test',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'info',
      HOST: '127.0.0.1',
      MONGO_URL: required('MONGO_URL'),
      KAFKA_BROKERS: required('KAFKA_BROKERS'),
      KAFKA_TOPIC_PREFIX: `${runPrefixes().topics}${id}.`,
      KAFKA_PARTITIONS: '1',
      // identity sits behind the gateway on loopback: the client IP is the gateway's X-Forwarded-For.
      TRUST_PROXY: '127.0.0.1',
      OUTBOX_POLL_MS: '100',
      AUTH_JWKS_URL: `http://127.0.0.1:${ports.identity}/v1/identity/.well-known/jwks.json`,
      ...localSecrets(),
      // incident's key for the pseudonyms it keeps after an erasure (secret, no default).
      ...Object.fromEntries(SERVICES.map((s) => [urlVariable(s), `http://127.0.0.1:${ports[s]}`])),
      ...opts.env,
    };
    const system = new RunningSystem(services, ports, env, opts.serviceEnv ?? {});
    await Promise.all(services.map((s) => system.startService(s)));
    await system.waitReady(services, opts.readyTimeoutMs ?? 120_000);
    return system;
  }

  /** Base URL of a service, e.g. `http://127.0.0.1:43121`. */
  url(service: ServiceName): string {
    return `http://127.0.0.1:${this.ports[service]}`;
  }

  /** The database a service uses in this system. */
  database(service: ServiceName): string {
    const id = this.env.KAFKA_TOPIC_PREFIX!.split('.').at(-2)!;
    return `${runPrefixes().databases}${id}_${service.replace('-', '_')}`;
  }

  /** The topic of an event type in this system. */
  topic(type: string): string {
    return `${this.env.KAFKA_TOPIC_PREFIX}${type}`;
  }

  /** Starts a service process (again); resolves once spawned (use waitReady to wait for /readyz). */
  async startService(service: ServiceName): Promise<void> {
    const server = join(repoRoot, 'apps', service, 'dist', 'server.js');
    if (!existsSync(server)) throw new Error(`${server} is missing: build first (npx turbo run build)`);
    const log = join(this.logDir, `${service}.log`);
    const fd = openSync(log, 'a');
    const child = spawn(process.execPath, [server], {
      cwd: join(repoRoot, 'apps', service),
      env: {
        PATH: process.env.PATH ?? '',
        ...this.env,
        PORT: String(this.ports[service]),
        MONGO_DB: this.database(service),
        ...this.serviceEnv[service],
      },
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    this.procs.set(service, { child, log });
  }

  async waitReady(services: ServiceName[] = this.services, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const pending = new Set(services);
    while (pending.size) {
      for (const s of [...pending]) {
        const proc = this.procs.get(s);
        if (proc && proc.child.exitCode !== null) throw new Error(`${s} exited (${proc.child.exitCode}):\n${this.logTail(s)}`);
        const ok = await fetch(`${this.url(s)}/readyz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
        if (ok) pending.delete(s);
      }
      if (!pending.size) return;
      if (Date.now() > deadline) {
        throw new Error(`not ready within ${timeoutMs / 1000} s: ${[...pending].join(', ')}\n${[...pending].map((s) => `--- ${s}\n${this.logTail(s)}`).join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Last lines of a service's log (for failure messages). */
  logTail(service: ServiceName, lines = 40): string {
    const proc = this.procs.get(service);
    return proc && existsSync(proc.log) ? readFileSync(proc.log, 'utf8').split('\n').slice(-lines).join('\n') : '(no log)';
  }

  /** Sends a signal (SIGKILL: a crash) and waits for the process to exit. */
  async kill(service: ServiceName, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.procs.get(service);
    if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
    const exited = new Promise((r) => proc.child.once('exit', r));
    proc.child.kill(signal);
    await exited;
  }

  /** Sends a signal to a running service process without waiting (e.g. the erasure benchmark's SIGWINCH). */
  signal(service: ServiceName, signal: NodeJS.Signals): void {
    const proc = this.procs.get(service);
    if (proc && proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill(signal);
  }

  /** Kills (SIGKILL by default) and starts a service again, then waits until it is ready. */
  async restart(service: ServiceName, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.kill(service, signal);
    await this.startService(service);
    await this.waitReady([service]);
  }

  /** Stops every service gracefully (SIGTERM, then SIGKILL after 15 s). */
  async stop(): Promise<void> {
    await Promise.all([...this.procs.keys()].map(async (s) => {
      const proc = this.procs.get(s)!;
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
      const exited = new Promise((r) => proc.child.once('exit', r));
      proc.child.kill('SIGTERM');
      const timer = setTimeout(() => proc.child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }));
  }
}

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run tests through vitest (its global setup starts the infrastructure)`);
  return v;
}
