// The local MongoDB-protocol server (FerretDB 1.24 on SQLite, built by infra/ferretdb) and the two of
// its faults the kit and the launcher work around (docs/infrastructure.md), on the real server:
// - lookups by `_id` use an index (FerretDB's own `_id` index does not match the expression its
//   queries use; the launcher adds one that does), so a read or write by `_id` does not scan;
// - a bulk write of many updates in one command never returns (each update holds a pooled SQLite
//   connection until the command ends); bulkWriteChunked sends commands small enough.
import { dropDatabase, isolatedEnv, TestAuthority, waitFor } from '@pipp/testing';
import mongoose from 'mongoose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { bulkWriteChunked, loadConfig, MAX_WRITES_PER_COMMAND } from '../src/index.js';
import { buildDemoApp, DemoConfigSchema } from './fixtures/demo-app.js';

let env: Record<string, string>;
let conn: mongoose.Connection;
beforeAll(async () => {
  env = isolatedEnv('ferret', {});
  conn = await mongoose.createConnection(env.MONGO_URL!, { dbName: env.MONGO_DB }).asPromise();
});
afterAll(async () => {
  await conn?.close();
  await dropDatabase(env.MONGO_DB!);
});

it('looks documents up by _id through an index', async () => {
  const build = await conn.db!.admin().command({ buildInfo: 1 });
  expect(build, 'these tests are about the local FerretDB').toHaveProperty('ferretdbVersion');
  const coll = conn.collection('lookups');
  await coll.insertMany(Array.from({ length: 50 }, (_, i) => ({ _id: `d-${i}` as never, n: i })));
  const plan = await waitFor(async () => {
    // (A query first: SQLite reloads a pooled connection's schema when it runs one, not for EXPLAIN.)
    await coll.findOne({ _id: 'd-7' as never });
    const explained = await conn.db!.command({ explain: { find: 'lookups', filter: { _id: 'd-7' } } });
    const lines = (explained.queryPlanner?.Plan ?? []) as string[];
    return lines.some((l) => /USING INDEX \S+__id_lookup/.test(l)) ? lines : null;
  }, { what: 'the _id lookup index to be used', timeoutMs: 5000 });
  expect(plan.join('\n')).not.toMatch(/SCAN/);
  // A filter with more than `_id` is not pushed down by FerretDB 1.24: it reads the collection.
  const scanned = await conn.db!.command({ explain: { find: 'lookups', filter: { _id: 'd-7', n: 7 } } });
  expect(scanned.filterPushdown).toBe(false);
});

it('writes hundreds of updates in chunked commands (one command of that size never returns)', async () => {
  const coll = conn.collection('bulk');
  const ops = Array.from({ length: 10 * MAX_WRITES_PER_COMMAND + 5 }, (_, i) => ({
    updateOne: { filter: { _id: `b-${i}` as never }, update: { $set: { n: i } }, upsert: true },
  }));
  const results = await bulkWriteChunked(ops, (chunk) => coll.bulkWrite(chunk, { ordered: false }));
  expect(results).toHaveLength(11);
  expect(results.reduce((n, r) => n + r.upsertedCount, 0)).toBe(ops.length);
  expect(await coll.countDocuments({})).toBe(ops.length);
});

it('knows it talks to FerretDB and sends conditional writes as `_id` filters there', async () => {
  const authority = await TestAuthority.start();
  const app = await buildDemoApp(loadConfig(DemoConfigSchema, { ...env, AUTH_JWKS_URL: authority.jwksUrl }));
  try {
    await app.ready();
    expect(app.mongo.ferretdb).toBe(true);
    // The condition is the caller's to check under the document lock; FerretDB gets the indexed filter.
    expect(app.mongo.guarded({ _id: 'n-1', rev: 3 })).toEqual({ _id: 'n-1' });
    const explained = await conn.db!.command({ explain: { find: 'notes', filter: app.mongo.guarded({ _id: 'n-1', rev: 3 }) } });
    expect(explained.filterPushdown).toBe(true);
  } finally {
    await app.close();
    await authority.close();
  }
});
