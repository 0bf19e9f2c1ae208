import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
const cpu = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (+f[11] + +f[12]) * 10; };
const modes = process.argv.slice(2);
const body = (i) => JSON.stringify({ subjectId: `bench-${i}`, service: 'data-sharing', purpose: 'account', categories: ['phone-number'], functionId: 'sign-in' });
async function start(mode) {
  const child = spawn(process.execPath, [...(process.env.PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/ablprof/' + mode] : []), ...(process.env.PERF ? ['--perf-basic-prof'] : []), '/work/main/apps/consent/.abl/server.mjs', mode], { cwd: '/work/main/apps/consent', stdio: ['ignore', 'pipe', 'inherit'] });
  let token; const port = await new Promise((res) => { let o = ''; child.stdout.on('data', (d) => { o += d; const t = /TOKEN (\S+)/.exec(o); if (t) token = t[1]; const m = /READY (\d+)/.exec(o); if (m) res(+m[1]); }); });
  return { child, port, token };
}
const servers = {}; for (const m of modes) servers[m] = await start(m);
const run = async (port, pid, token) => { const c0 = cpu(pid); const r = await new Promise((res, rej) => autocannon({ url: `http://127.0.0.1:${port}/v1/consent/decisions`, method: 'POST', connections: 10, duration: 3, headers: { 'content-type': 'application/json', authorization: `Bearer ${token ?? 'x'}` }, requests: Array.from({ length: 300 }, (_, i) => ({ body: body(i) })) }, (e, r) => e ? rej(e) : res(r))); return 1000 * (cpu(pid) - c0) / r.requests.total; };
const res = Object.fromEntries(modes.map((m) => [m, []]));
for (const m of modes) await run(servers[m].port, servers[m].child.pid, servers[m].token);
for (let r = 0; r < 5; r++) for (const m of modes) res[m].push(await run(servers[m].port, servers[m].child.pid, servers[m].token));
const med = (xs) => [...xs].sort((a, b) => a - b)[2];
for (const m of modes) console.log(m.padEnd(18), 'µs CPU/req', med(res[m]).toFixed(1), (100 * med(res[modes[0]]) / med(res[m])).toFixed(1) + '%', res[m].map((x) => x.toFixed(1)).join(' '));
for (const s of Object.values(servers)) s.child.kill('SIGINT');
