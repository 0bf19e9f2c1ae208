// Config is validated at boot: a missing or malformed variable stops the process naming it.
import { Type } from '@sinclair/typebox';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, defineConfig, loadConfig } from '../src/index.js';

const schema = defineConfig({ SIGNING_SECRET: Type.String({ minLength: 16 }) }, { PORT: 4100, MONGO_DB: 'pipp_x' });
const valid = { MONGO_URL: 'mongodb://127.0.0.1:27017', KAFKA_BROKERS: '127.0.0.1:9092', SIGNING_SECRET: 'x'.repeat(16) };

describe('loadConfig', () => {
  it('applies defaults and coerces numbers', () => {
    const config = loadConfig(schema, { ...valid, KAFKA_PARTITIONS: '6' });
    expect(config).toMatchObject({ PORT: 4100, MONGO_DB: 'pipp_x', KAFKA_PARTITIONS: 6, HOST: '127.0.0.1', KAFKA_TOPIC_PREFIX: '' });
  });

  it('names every missing and malformed variable; secrets have no default', () => {
    let error: ConfigError | undefined;
    try {
      loadConfig(schema, { KAFKA_BROKERS: '127.0.0.1:9092', PORT: 'eighty', MONGO_URL: 'postgres://x' });
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const variables = error!.problems.map((p) => p.variable).sort();
    expect(variables).toEqual(['MONGO_URL', 'PORT', 'SIGNING_SECRET']);
    expect(error!.message).toMatch(/SIGNING_SECRET is required/);
  });

  it('stops a service process with exit code 1 and the variable named', () => {
    const server = fileURLToPath(new URL('./fixtures/demo-server.ts', import.meta.url));
    const env = { PATH: process.env.PATH, KAFKA_BROKERS: '127.0.0.1:9', AUTH_JWKS_URL: 'http://127.0.0.1:9/jwks.json' };
    const r = spawnSync(process.execPath, ['--import', 'tsx', server], { env, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/incident: invalid configuration: MONGO_URL is required/);
  });
});
