// Benchmark of the gateway (issue: "an authenticated consent decision through the gateway, the same
// call direct to the consent service, and a bare Fastify hello-world, in one run with autocannon"),
// against the real consent service (its decision API, on a test database, tokens from a loopback JWKS).
// Targets: through the gateway ≥ 35 % of hello-world requests per second; p99 ≤ 10 ms at half the
// gateway's own maximum rate; token verification costs ≤ 15 % of throughput against the same gateway
// with verification off. Prints figures and ratios measured in the same run; not a test.
//
//   MONGO_URL=mongodb://127.0.0.1:27018 KAFKA_BROKERS=127.0.0.1:19092 npx tsx apps/gateway/bench/gateway.bench.ts
//   (BENCH_SECONDS=5 BENCH_ROUNDS=3 BENCH_CONNECTIONS=32 by default; BENCH_CPU_PROFILE=gateway-on writes a CPU profile
//   of that server into ./bench-profiles)
import { TestAuthority, dropDatabase, medianBy, uniqueId } from '@pipp/testing';
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
process.env.MONGO_URL ??= 'mongodb://127.0.0.1:27018';
process.env.KAFKA_BROKERS ??= '127.0.0.1:19092';

const children: ChildProcess[] = [];
function start(kind: string, env: Record<string, string>): Promise<number> {
  const prof = process.env.BENCH_CPU_PROFILE && kind === process.env.BENCH_CPU_PROFILE ? ['--cpu-prof', '--cpu-prof-dir=bench-profiles'] : [];
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', fileURLToPath(new URL('./servers.ts', import.meta.url)), kind], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`${kind} exited (${code}) before it was ready`)));
  });
}

interface Run { rps: number; p50: number; p99: number; errors: number; non2xx: number }
async function load(url: string, opts: { method?: 'POST' | 'GET'; body?: string; headers?: Record<string, string>; rate?: number; seconds?: number }): Promise<Run> {
  const result = await autocannon({
    url, method: opts.method ?? 'GET', connections: CONNECTIONS, duration: opts.seconds ?? SECONDS,
    ...(opts.body ? { body: opts.body } : {}), headers: opts.headers ?? {},
    ...(opts.rate ? { overallRate: opts.rate } : {}),
  });
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.timeouts, non2xx: result.non2xx };
}

const authority = await TestAuthority.start();
const db = `bench_gateway_${uniqueId()}`;
const consentDb = `bench_consent_${uniqueId()}`;
try {
  const upstreamPort = await start('consent', {
    AUTH_JWKS_URL: authority.jwksUrl, MONGO_DB: consentDb, KAFKA_TOPIC_PREFIX: `bench.${uniqueId()}.`, LOG_LEVEL: 'warn', PORT: '0',
    CONSENT_PSEUDONYM_KEY: randomBytes(32).toString('base64url'),
  });
  const upstream = `http://127.0.0.1:${upstreamPort}`;
  const gatewayEnv = {
    AUTH_JWKS_URL: authority.jwksUrl, MONGO_DB: db, KAFKA_TOPIC_PREFIX: `bench.${uniqueId()}.`, LOG_LEVEL: 'warn',
    CONSENT_URL: upstream, RATE_LIMIT_IP_MAX: '1000000', RATE_LIMIT_SUBJECT_MAX: '1000000', PORT: '0',
  };
  const [hello, gwOn, gwOff] = await Promise.all([start('hello', {}), start('gateway-on', gatewayEnv), start('gateway-off', gatewayEnv)]);

  // A service asking for itself (consent checks that the token's service is the one named).
  const token = authority.token({ sub: 'identity', role: 'service', expiresInS: 3600 });
  const decision = {
    method: 'POST' as const,
    body: JSON.stringify({ subjectId: 'subjBench1', service: 'identity', purpose: 'personalization', categories: ['activity-log'] }),
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
  };
  const path = '/v1/consent/decisions';

  await load(`http://127.0.0.1:${gwOn}${path}`, { ...decision, seconds: 2 }); // warm-up (JIT, pools, JWKS)
  await load(`http://127.0.0.1:${gwOff}${path}`, { ...decision, seconds: 2 });
  // Rounds interleave the four measurements, so that a change of load on a shared machine hits them
  // alike; each figure is the median of its rounds.
  const targets = {
    hello: () => load(`http://127.0.0.1:${hello}/`, {}),
    direct: () => load(`${upstream}${path}`, decision),
    gateway: () => load(`http://127.0.0.1:${gwOn}${path}`, decision),
    gatewayAuthOff: () => load(`http://127.0.0.1:${gwOff}${path}`, decision),
  };
  const samples: Record<keyof typeof targets, Run[]> = { hello: [], direct: [], gateway: [], gatewayAuthOff: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, run] of Object.entries(targets) as [keyof typeof targets, () => Promise<Run>][]) samples[name].push(await run());
  }
  const median = (rs: Run[]): Run => medianBy(rs, (r) => r.rps);
  const runs = {
    hello: median(samples.hello), direct: median(samples.direct), gateway: median(samples.gateway), gatewayAuthOff: median(samples.gatewayAuthOff),
  };
  const halfRate = Math.max(1, Math.floor(runs.gateway.rps / 2));
  const atHalf = await load(`http://127.0.0.1:${gwOn}${path}`, { ...decision, rate: halfRate });

  const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(1)} %`;
  const row = (name: string, r: Run) => `${name.padEnd(34)} ${r.rps.toFixed(0).padStart(8)} req/s   p50 ${String(r.p50).padStart(4)} ms   p99 ${String(r.p99).padStart(4)} ms   errors ${r.errors}   non-2xx ${r.non2xx}`;
  console.log(`\nautocannon, ${CONNECTIONS} connections, ${SECONDS} s per run, median of ${ROUNDS} interleaved rounds, each server in its own process`);
  console.log(row('bare Fastify hello-world', runs.hello));
  console.log(row('consent decision, direct', runs.direct));
  console.log(row('consent decision, gateway (auth on)', runs.gateway));
  console.log(row('consent decision, gateway (auth off)', runs.gatewayAuthOff));
  console.log(row(`gateway at half its rate (${halfRate}/s)`, atHalf));
  const ratio = runs.gateway.rps / runs.hello.rps;
  const authCost = 1 - runs.gateway.rps / runs.gatewayAuthOff.rps;
  console.log(`\ngateway / hello-world:            ${pct(runs.gateway.rps, runs.hello.rps)}   (target ≥ 35 %)   ${ratio >= 0.35 ? 'met' : 'NOT met'}`);
  console.log(`gateway / direct:                 ${pct(runs.gateway.rps, runs.direct.rps)}`);
  console.log(`p99 at half the gateway's rate:   ${atHalf.p99} ms   (target ≤ 10 ms)   ${atHalf.p99 <= 10 ? 'met' : 'NOT met'}`);
  console.log(`cost of token verification:       ${(authCost * 100).toFixed(1)} % of throughput   (target ≤ 15 %)   ${authCost <= 0.15 ? 'met' : 'NOT met'}`);
  const failed = Object.values(samples).flat().concat(atHalf).some((r) => r.errors || r.non2xx);
  if (failed) console.log('\nWARNING: some requests failed or were not 2xx; the figures above are not meaningful');
} finally {
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
  await authority.close();
  await dropDatabase(db).catch(() => undefined);
  await dropDatabase(consentDb).catch(() => undefined);
}
