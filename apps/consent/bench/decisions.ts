// Decision API benchmark (issue: "decision throughput and p50/p99 latency … against a bare Fastify
// hello-world measured in the same run with the same load generator"). Prints figures, asserts nothing.
//   npx tsx apps/consent/bench/decisions.ts            (MONGO_URL and KAFKA_BROKERS from the environment)
// Each server runs in its own process (the gateway through its own bench server script, token
// verification on); autocannon runs here. Runs are short (DURATION_S, default 5 s; ROUNDS interleaved rounds, default 3)
// to be gentle on a shared 2-core machine. Target: decisions ≥ 50 % of hello-world req/s, and p99 ≤ 5 ms
// at half the decisions' own maximum rate.
import { createEvent } from '@pipp/contracts';
import { TestAuthority, dropDatabase, dropTopics, isolatedEnv, median, medianBy, produceRaw } from '@pipp/testing';
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const DURATION_S = Number(process.env.DURATION_S ?? 5);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 10);
const SUBJECTS = Number(process.env.SUBJECTS ?? 300);
const server = fileURLToPath(new URL('./server.ts', import.meta.url));
/** The gateway's own benchmark server (the real gateway, token verification on). */
const gatewayServer = fileURLToPath(new URL('../../gateway/bench/servers.ts', import.meta.url));

async function start(script: string, mode: string, env: Record<string, string> = {}): Promise<{ child: ChildProcess; url: string }> {
  // BENCH_CPU_PROFILE=<mode> (hello, consent) writes a CPU profile of that server into ./bench-profiles.
  const prof = process.env.BENCH_CPU_PROFILE === mode ? ['--cpu-prof', '--cpu-prof-dir=bench-profiles'] : [];
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', script, mode], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"port":(\d+)|READY (\d+)/.exec(out);
      if (m) resolve(Number(m[1] ?? m[2]));
    });
    child.once('exit', (code) => reject(new Error(`${mode} server exited (${code}) before it was ready`)));
  });
  return { child, url: `http://127.0.0.1:${port}` };
}

async function stop(child: ChildProcess) {
  child.kill('SIGTERM');
  await once(child, 'exit');
}

/** CPU time (user + system, ms) a process has used so far, from /proc (Linux). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * (1000 / 100); // utime + stime, in clock ticks of 10 ms
}

/** An autocannon run, with the CPU time per request (µs) of the server process it loads. */
type Result = autocannon.Result & { cpuUsPerRequest: number };
async function run(opts: autocannon.Options, server: ChildProcess): Promise<Result> {
  const before = cpuMs(server.pid!);
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    autocannon({ connections: CONNECTIONS, duration: DURATION_S, ...opts }, (err, r) => (err ? reject(err) : resolve(r)));
  });
  return Object.assign(result, { cpuUsPerRequest: (1000 * (cpuMs(server.pid!) - before)) / Math.max(1, result.requests.total) });
}
const line = (name: string, r: Result) =>
  `${name.padEnd(34)} ${r.requests.average.toFixed(0).padStart(7)} req/s   p50 ${String(r.latency.p50).padStart(4)} ms   p99 ${String(r.latency.p99).padStart(4)} ms   errors ${r.errors + r.non2xx}`;

const authority = await TestAuthority.start();
const env = isolatedEnv('consentbench', {
  AUTH_JWKS_URL: authority.jwksUrl, CONSENT_PSEUDONYM_KEY: 'bench-pseudonym-key-0123456789abcdef0123', LOG_LEVEL: 'warn', KAFKA_PARTITIONS: '1',
});
const token = authority.token({ sub: 'data-sharing', role: 'service', expiresInS: 3600 });
const subjects = Array.from({ length: SUBJECTS }, (_, i) => `bench-${i}`);

const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);
const hello = await start(server, 'hello');
log('hello-world server up');
const consent = await start(server, 'consent', env);
log('consent service up');
const gateway = await start(gatewayServer, 'gateway-on', {
  AUTH_JWKS_URL: authority.jwksUrl, MONGO_DB: `${env.MONGO_DB}_gw`, KAFKA_TOPIC_PREFIX: env.KAFKA_TOPIC_PREFIX!, LOG_LEVEL: 'warn', PORT: '0',
  CONSENT_URL: consent.url, RATE_LIMIT_IP_MAX: '1000000', RATE_LIMIT_SUBJECT_MAX: '1000000',
});
log('gateway up');
try {
  // Subjects register (identity's event); each then has the basic purposes granted.
  const events = subjects.map((subjectId) => createEvent('privacy.subject.registered', {
    source: 'identity', subject: subjectId, payload: { subjectId, registeredAt: new Date().toISOString(), policyAcknowledged: { documentId: 'general', version: 1 } },
  }));
  for (let i = 0; i < events.length; i += 500) {
    await produceRaw(`${env.KAFKA_TOPIC_PREFIX}privacy.subject.registered`, events.slice(i, i + 500).map((e) => ({ key: e.subject!, value: JSON.stringify(e) })));
  }
  log(`${SUBJECTS} registrations produced`);
  const body = (subjectId: string) => JSON.stringify({ subjectId, service: 'data-sharing', purpose: 'account', categories: ['phone-number'], functionId: 'sign-in' });
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
  for (const deadline = Date.now() + 120_000; ;) {
    const res = await fetch(`${consent.url}/v1/consent/decisions`, { method: 'POST', headers, body: body(subjects[subjects.length - 1]!) });
    if (res.ok && ((await res.json()) as { allowed: boolean }).allowed) break;
    if (Date.now() > deadline) throw new Error('subjects were not registered in time');
    await new Promise((r) => setTimeout(r, 500));
  }

  log('subjects registered; measuring');
  // One prebuilt request per subject, cycled: autocannon builds their bytes once, as it does the
  // hello-world's single request. (A `setupRequest` callback rebuilds every request in the load
  // generator, which then, sharing the 2 cores, held the decisions' figure down by itself.)
  const decisions: autocannon.Options = {
    url: `${consent.url}/v1/consent/decisions`, method: 'POST', headers,
    requests: subjects.map((subjectId) => ({ body: body(subjectId) })),
  };
  const viaGateway: autocannon.Options = { ...decisions, url: `${gateway.url}/v1/consent/decisions` };
  const helloOpts: autocannon.Options = { url: `${hello.url}/hello`, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' };

  await run({ ...helloOpts, duration: 1 }, hello.child); // warm-up
  await run({ ...decisions, duration: 2 }, consent.child);
  await run({ ...viaGateway, duration: 2 }, gateway.child);
  // The machine's speed drifts by ±30 % between runs (docs/services/consent.md), so the three are
  // measured in ROUNDS interleaved rounds, as in the gateway's benchmark; each figure is the median
  // of its rounds, and the ratio the median of each round's own ratio.
  const rounds: { h: Result; d: Result; g: Result }[] = [];
  for (let i = 0; i < ROUNDS; i++) rounds.push({ h: await run(helloOpts, hello.child), d: await run(decisions, consent.child), g: await run(viaGateway, gateway.child) });
  const rps = (r: Result) => r.requests.average;
  const h = medianBy(rounds.map((r) => r.h), rps);
  const d = medianBy(rounds.map((r) => r.d), rps);
  const g = medianBy(rounds.map((r) => r.g), rps);
  const half = Math.max(1, Math.floor(d.requests.average / 2));
  const dHalf = await run({ ...decisions, overallRate: half }, consent.child);
  const gHalf = Math.max(1, Math.floor(g.requests.average / 2));
  const gAtHalf = await run({ ...viaGateway, overallRate: gHalf }, gateway.child);

  const ratio = median(rounds.map((r) => rps(r.d) / rps(r.h)));
  process.stdout.write([
    `decision benchmark: ${CONNECTIONS} connections, ${DURATION_S} s per run, median of ${ROUNDS} interleaved rounds, ${SUBJECTS} subjects, ES256 service token on every request`,
    ...rounds.map((r, i) => `  round ${i + 1}: hello-world ${rps(r.h).toFixed(0)}/s (${r.h.cpuUsPerRequest.toFixed(1)} µs CPU each), decisions ${rps(r.d).toFixed(0)}/s (${((rps(r.d) / rps(r.h)) * 100).toFixed(1)} %; ${r.d.cpuUsPerRequest.toFixed(1)} µs CPU each), gateway ${rps(r.g).toFixed(0)}/s (${r.g.cpuUsPerRequest.toFixed(1)} µs of the gateway's CPU each)`),
    line('bare Fastify hello-world (max)', h),
    line('POST /v1/consent/decisions (max)', d),
    line(`decisions at half load (${half}/s)`, dHalf),
    line('decisions through the gateway (max)', g),
    line(`gateway at half its load (${gHalf}/s)`, gAtHalf),
    `throughput ratio decisions / hello-world (median of the rounds' ratios): ${(ratio * 100).toFixed(1)} % (target ≥ 50 %)  ${ratio >= 0.5 ? 'MET' : 'NOT MET'}`,
    `p99 at half load: ${dHalf.latency.p99} ms (target ≤ 5 ms)  ${dHalf.latency.p99 <= 5 ? 'MET' : 'NOT MET'}`,
    `through the gateway: ${((rps(g) / rps(h)) * 100).toFixed(1)} % of hello-world, ${((rps(g) / rps(d)) * 100).toFixed(1)} % of direct (the gateway's targets: apps/gateway/bench)`,
    '',
  ].join('\n'));
} finally {
  await stop(gateway.child);
  await stop(consent.child);
  await stop(hello.child);
  await authority.close();
  await dropDatabase(env.MONGO_DB!);
  await dropDatabase(`${env.MONGO_DB}_gw`).catch(() => undefined);
  await dropTopics(env.KAFKA_TOPIC_PREFIX!);
}
