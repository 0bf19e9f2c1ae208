// `make dev` runs each service through scripts/dev-service.mjs: restarted when it crashes (under
// `tsx watch` a crashed service stayed down), restarted when its sources change, stopped once by Ctrl-C.
// A stand-in service in a temporary app folder records its starts and stops in a file.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const supervisor = join(root, 'scripts', 'dev-service.mjs');
const running: ChildProcess[] = [];
const dirs: string[] = [];
const files: string[] = [];

afterEach(async () => {
  for (const p of running.splice(0)) if (p.exitCode === null && p.signalCode === null) { try { process.kill(-p.pid!, 'SIGKILL'); } catch { /* gone */ } }
  for (const d of [...dirs.splice(0), ...files.splice(0)]) rmSync(d, { recursive: true, force: true });
});

/** An app folder (inside the repository, where `tsx` resolves) whose src/server.ts runs `body`. */
function app(body: string, manifest?: object) {
  const dir = mkdtempSync(join(root, 'test', '.dev-service-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'src'));
  if (manifest) writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest));
  const events = join(dir, 'events.txt');
  writeFileSync(events, '');
  writeFileSync(join(dir, 'src', 'server.ts'), `import { appendFileSync } from 'node:fs';\nconst note = (e: string) => appendFileSync(${JSON.stringify(events)}, e + ' ' + process.pid + '\\n');\nnote('start');\n${body}\n`);
  const proc = spawn(process.execPath, [supervisor, 'src/server.ts'], { cwd: dir, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  running.push(proc);
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
  const lines = () => readFileSync(events, 'utf8').split('\n').filter(Boolean);
  return { dir, proc, lines, log: () => log };
}

async function until<T>(check: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  for (const end = Date.now() + timeoutMs; ; await new Promise((r) => setTimeout(r, 50))) {
    const v = check();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out');
  }
}

describe('make dev: one service under scripts/dev-service.mjs', () => {
  it('restarts a service that crashed, backing off', { timeout: 20_000 }, async () => {
    const a = app("setTimeout(() => process.exit(1), 100);");
    await until(() => a.lines().filter((l) => l.startsWith('start')).length >= 3);
    expect(a.log()).toMatch(/exited \(code 1\); restarting in 1 s/);
    expect(a.log()).toMatch(/exited \(code 1\); restarting in 2 s/);
  });

  it('restarts a running service when its sources change', { timeout: 20_000 }, async () => {
    const a = app("setInterval(() => {}, 1000);\nprocess.on('SIGTERM', () => { note('stop'); process.exit(0); });");
    const [first] = await until(() => a.lines().length >= 1 && a.lines());
    writeFileSync(join(a.dir, 'src', 'other.ts'), 'export const x = 1;\n');
    await until(() => a.lines().length >= 3);
    const [, stop, second] = a.lines();
    expect(stop).toBe(`stop ${first!.split(' ')[1]}`);
    expect(second).toMatch(/^start /);
    expect(second).not.toBe(first);
  });

  it('restarts for a new build of a workspace package it imports, not of others', { timeout: 20_000 }, async () => {
    // `make demo` builds packages/demo, which no service imports: all six services had restarted.
    const a = app("setInterval(() => {}, 1000);", { dependencies: { '@pipp/service-kit': '*' } });
    const starts = () => a.lines().filter((l) => l.startsWith('start')).length;
    await until(() => starts() === 1);
    const build = (pkg: string) => {
      mkdirSync(join(root, 'packages', pkg, 'dist'), { recursive: true });
      const file = join(root, 'packages', pkg, 'dist', `.dev-service-probe-${process.pid}.js`);
      files.push(file);
      writeFileSync(file, '');
    };
    build('demo');
    await new Promise((r) => setTimeout(r, 1500));
    expect(starts()).toBe(1);
    build('contracts'); // imported through the kit
    await until(() => starts() === 2);
  });

  it('stops with the process group on Ctrl-C, the service signalled once and not restarted', { timeout: 30_000 }, async () => {
    // A second signal makes a service exit without closing (close-with-grace): it must get only the group's.
    const a = app("let signals = 0;\nsetInterval(() => {}, 1000);\nprocess.on('SIGINT', () => { signals += 1; note('sigint' + signals); setTimeout(() => process.exit(0), 500); });\nprocess.on('SIGTERM', () => { note('sigterm'); process.exit(1); });");
    await until(() => a.lines().length >= 1);
    process.kill(-a.proc.pid!, 'SIGINT');
    const [code] = await once(a.proc, 'exit');
    expect(code).toBe(0);
    await new Promise((r) => setTimeout(r, 1500));
    expect(a.lines().map((l) => l.split(' ')[0])).toEqual(['start', 'sigint1']);
  });
});
