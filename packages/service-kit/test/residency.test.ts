// Data residency (policy 5.3): every service declares where its stores are; a store outside the home
// region without a 5.3 exception and its evidence is flagged, in the service's own log at start-up
// and in the announcement the retention service reports from; unless told only to flag it, such a
// service does not start.
import { parseEvent } from '@pipp/contracts';
import { collectMessages, dropDatabase, dropTopics, isolatedEnv, TestAuthority } from '@pipp/testing';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { assessResidency, loadConfig, residencyDeclaration, residencyRefusal } from '../src/index.js';
import { DemoConfigSchema } from './fixtures/demo-app.js';

const base = { MONGO_URL: 'mongodb://127.0.0.1:27017', KAFKA_BROKERS: '127.0.0.1:9092', AUTH_JWKS_URL: 'http://127.0.0.1:9/jwks.json' };

describe('assessResidency', () => {
  it('accepts stores in the home region and flags one abroad without an exception', () => {
    expect(assessResidency({ homeRegion: 'CN', stores: [{ store: 'mongodb', location: 'CN' }] }).flagged).toBe(false);
    const abroad = assessResidency({ homeRegion: 'CN', stores: [{ store: 'mongodb', location: 'CN' }, { store: 'backups', location: 'SG' }] });
    expect(abroad).toMatchObject({ flagged: true, outside: [{ store: 'backups', location: 'SG' }] });
    expect(abroad.summary).toMatch(/backups in SG outside the home region CN without a policy 5.3 exception/);
  });

  it('treats Hong Kong as outside mainland China', () => {
    expect(assessResidency({ homeRegion: 'CN', stores: [{ store: 'kafka', location: 'HK' }] }).flagged).toBe(true);
  });

  it('accepts a store abroad under a 5.3 exception that names its evidence', () => {
    const r = assessResidency({ homeRegion: 'CN', stores: [{ store: 'mongodb', location: 'DE' }], exception: { clause: '5.3.3', reference: 'contract C-17' } });
    expect(r.flagged).toBe(false);
    expect(r.summary).toMatch(/under policy 5.3.3 \(contract C-17\)/);
  });
});

describe('residencyDeclaration', () => {
  it('declares the database, the broker and extra stores from the config, CN by default', () => {
    const d = residencyDeclaration('consent', loadConfig(DemoConfigSchema, base), { mongo: true });
    expect(d).toMatchObject({ service: 'consent', homeRegion: 'CN', flagged: false, stores: [{ store: 'mongodb', location: 'CN' }, { store: 'kafka', location: 'CN' }] });
    const abroad = residencyDeclaration('gateway', loadConfig(DemoConfigSchema, { ...base, DATA_STORE_LOCATIONS: 'kafka=CN,backups=US' }), { mongo: false });
    expect(abroad.stores).toEqual([{ store: 'kafka', location: 'CN' }, { store: 'backups', location: 'US' }]);
    expect(abroad.flagged).toBe(true);
  });

  it('ignores an exception without its evidence', () => {
    const d = residencyDeclaration('identity', loadConfig(DemoConfigSchema, { ...base, DATA_LOCATION: 'US', DATA_LOCATION_EXCEPTION: '5.3.1' }), { mongo: true });
    expect(d.exception).toBeUndefined();
    expect(d.flagged).toBe(true);
  });

  it('refuses to start with a store abroad and no exception, unless told only to flag it', () => {
    const abroad = loadConfig(DemoConfigSchema, { ...base, DATA_STORE_LOCATIONS: 'backups=SG' });
    expect(residencyRefusal('consent', abroad, { mongo: true })).toMatch(/breaks policy 5.3: backups in SG outside the home region CN/);
    expect(residencyRefusal('consent', { ...abroad, DATA_RESIDENCY_MODE: 'flag' }, { mongo: true })).toBeUndefined();
    expect(residencyRefusal('consent', { ...abroad, DATA_LOCATION_EXCEPTION: '5.3.3', DATA_LOCATION_EXCEPTION_REF: 'contract C-17' }, { mongo: true })).toBeUndefined();
    expect(residencyRefusal('consent', loadConfig(DemoConfigSchema, base), { mongo: true })).toBeUndefined();
  });

  it('refuses a malformed location at boot', () => {
    expect(() => loadConfig(DemoConfigSchema, { ...base, DATA_LOCATION: 'china' })).toThrow(/DATA_LOCATION/);
    expect(() => loadConfig(DemoConfigSchema, { ...base, DATA_LOCATION_EXCEPTION: '5.3.9' })).toThrow(/DATA_LOCATION_EXCEPTION/);
    expect(() => loadConfig(DemoConfigSchema, { ...base, DATA_RESIDENCY_MODE: 'ignore' })).toThrow(/DATA_RESIDENCY_MODE/);
  });
});

it('stops a service whose stores break policy 5.3 before it connects anything, naming what is abroad', async () => {
  // Nothing listens on these: the refusal comes before any connection is tried.
  const env = { ...base, MONGO_URL: 'mongodb://127.0.0.1:9', KAFKA_BROKERS: '127.0.0.1:9', DATA_LOCATION: 'US' };
  const server = fileURLToPath(new URL('./fixtures/demo-server.ts', import.meta.url));
  const proc = fork(server, [], { env: { ...process.env, ...env }, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let err = '';
  proc.stderr!.on('data', (chunk: Buffer) => { err += chunk.toString(); });
  const [code] = await once(proc, 'exit');
  expect(code).toBe(1);
  expect(err).toMatch(/incident: invalid configuration: DATA_LOCATION breaks policy 5.3: mongodb in US, kafka in US outside the home region CN without a policy 5.3 exception/);
});

it('flags a store abroad in the service log at start-up and announces the declaration', async () => {
  const authority = await TestAuthority.start();
  const env = isolatedEnv('residency', { AUTH_JWKS_URL: authority.jwksUrl, LOG_LEVEL: 'warn', DATA_LOCATION: 'US', DATA_RESIDENCY_MODE: 'flag' });
  const server = fileURLToPath(new URL('./fixtures/demo-server.ts', import.meta.url));
  const proc = fork(server, [], { env: { ...process.env, ...env }, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  let out = '';
  proc.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString(); });
  try {
    await new Promise((resolve, reject) => {
      proc.once('message', resolve);
      proc.once('exit', (code) => reject(new Error(`server exited early with ${code}`)));
    });
    const [message] = await collectMessages(`${env.KAFKA_TOPIC_PREFIX}privacy.residency.declared`, (m) => m.length >= 1, 60_000);
    const parsed = parseEvent(message!.value);
    expect(parsed.ok).toBe(true);
    if (parsed.ok) {
      expect(parsed.event).toMatchObject({ source: 'incident', payload: { service: 'incident', homeRegion: 'CN', flagged: true, stores: [{ store: 'mongodb', location: 'US' }, { store: 'kafka', location: 'US' }] } });
    }
    const warning = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string }).find((l) => /data residency/.test(l.msg));
    expect(warning).toMatchObject({ level: 40 });
    expect(warning!.msg).toMatch(/outside the home region CN without a policy 5.3 exception/);
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    await authority.close();
    await dropDatabase(env.MONGO_DB!);
    await dropTopics(env.KAFKA_TOPIC_PREFIX!);
  }
});
