// Database time by command shape (command, collection, filter keys), for the erasure benchmark's
// BENCH_DB_PROFILE=1. Imported by erasure.ts for the service in its own process, and preloaded with
// `node --import` into each real service process, which then appends its table to the file named by
// BENCH_DB_PROFILE_OUT when it exits (SIGWINCH clears the tables). The client must be created with
// `monitorCommands=true`.
import { appendFileSync } from 'node:fs';
import mongoose from 'mongoose';

/** Times every command of `client` by shape; `table()` gives the slowest 20 shapes (total ms, count, mean ms). */
export function profileCommands(client) {
  const started = new Map();
  const byShape = new Map();
  client.on('commandStarted', (e) => {
    const c = e.command;
    const filter = c.filter ?? c.query ?? c.updates?.[0]?.q ?? c.deletes?.[0]?.q;
    started.set(e.requestId, `${e.commandName} ${String(c[e.commandName])} ${filter ? JSON.stringify(Object.keys(filter)) : ''}`);
  });
  client.on('commandSucceeded', (e) => {
    const shape = started.get(e.requestId) ?? e.commandName;
    started.delete(e.requestId);
    const s = byShape.get(shape) ?? { n: 0, ms: 0 };
    s.n += 1;
    s.ms += e.duration;
    byShape.set(shape, s);
  });
  return {
    reset() {
      byShape.clear();
    },
    table() {
      const rows = [...byShape].sort((a, b) => b[1].ms - a[1].ms).slice(0, 20);
      return rows.map(([k, v]) => `  ${v.ms.toFixed(0).padStart(8)} ${String(v.n).padStart(6)} ${(v.ms / v.n).toFixed(1).padStart(7)}  ${k}`).join('\n');
    },
  };
}

const out = process.env.BENCH_DB_PROFILE_OUT;
if (out) {
  const { MongoClient } = mongoose.mongo;
  const connect = MongoClient.prototype.connect;
  const profiles = [];
  MongoClient.prototype.connect = function patchedConnect(...args) {
    profiles.push(profileCommands(this));
    return connect.apply(this, args);
  };
  // The benchmark sends SIGWINCH when its erasures start, so the tables leave out the set-up (a signal
  // that close-with-grace does not treat as a stop, and that does nothing to a process without this hook).
  process.on('SIGWINCH', () => { for (const p of profiles) p.reset(); });
  process.on('exit', () => {
    const name = process.env.MONGO_DB ?? String(process.pid);
    appendFileSync(out, `[bench] ${name}: database time by command shape (total ms, count, mean ms):\n${profiles.map((p) => p.table()).join('\n')}\n`);
  });
}
