// Field sealing and recipient-specific subject pseudonyms (DATA_ENCRYPTION_KEY).
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Sealer } from '../src/plugins/crypto.js';
import { ConfigSchema } from '../src/config.js';
import { ownClientSecret } from '../src/app.js';
import { loadConfig } from '@pipp/service-kit';

const key = randomBytes(32).toString('base64');

describe('Sealer', () => {
  it('round-trips, never shows the plain text, and detects tampering or another key', () => {
    const s = new Sealer(key);
    const sealed = s.seal('13812345678');
    expect(sealed).toMatch(/^v1\./);
    expect(sealed).not.toContain('13812345678');
    expect(s.seal('13812345678')).not.toBe(sealed);
    expect(s.open(sealed)).toBe('13812345678');
    // Flip one character of the ciphertext part (always a real change).
    const at = sealed.length - 5;
    const tampered = `${sealed.slice(0, at)}${sealed[at] === 'A' ? 'B' : 'A'}${sealed.slice(at + 1)}`;
    expect(tampered).not.toBe(sealed);
    expect(() => s.open(tampered)).toThrow();
    expect(() => new Sealer(randomBytes(32).toString('base64')).open(sealed)).toThrow();
  });

  it('gives each recipient its own stable pseudonym of a subject', () => {
    const s = new Sealer(key);
    expect(s.subjectRef('rcp_a', 'u1')).toBe(s.subjectRef('rcp_a', 'u1'));
    expect(s.subjectRef('rcp_a', 'u1')).not.toBe(s.subjectRef('rcp_b', 'u1'));
    // A subject id long enough not to turn up in a random base64url string by chance ('u1' did, in 1 run of ~200).
    const subject = 'sub_7f3c91e2a4b64d0e';
    expect(s.subjectRef('rcp_a', subject)).not.toContain(subject);
    expect(s.subjectRef('rcp_a', subject)).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(new Sealer(randomBytes(32).toString('base64url')).subjectRef('rcp_a', 'u1')).not.toBe(s.subjectRef('rcp_a', 'u1'));
  });

  it('refuses a key that is not 32 bytes', () => {
    expect(() => new Sealer(randomBytes(16).toString('base64'))).toThrow(/32 bytes/);
  });
});

describe('configuration', () => {
  const env = { MONGO_URL: 'mongodb://x', KAFKA_BROKERS: 'k:1', AUTH_JWKS_URL: 'http://i/jwks', SERVICE_CLIENT_SECRETS: '{"data-sharing":"s"}', DATA_ENCRYPTION_KEY: key };
  it('needs the secrets, with no default, and names the variable', () => {
    expect(() => loadConfig(ConfigSchema, { ...env, DATA_ENCRYPTION_KEY: undefined })).toThrow(/DATA_ENCRYPTION_KEY/);
    expect(() => loadConfig(ConfigSchema, { ...env, SERVICE_CLIENT_SECRETS: undefined })).toThrow(/SERVICE_CLIENT_SECRETS/);
    const c = loadConfig(ConfigSchema, env);
    expect(c).toMatchObject({ HOME_REGION: 'CN', WEBHOOK_ALLOW_LOOPBACK: false, WEBHOOK_ALLOWED_HOSTS: '', ANONYMIZATION_K: 5, PORT: 4003 });
    expect(ownClientSecret(c)).toBe('s');
    expect(loadConfig(ConfigSchema, { ...env, WEBHOOK_ALLOWED_HOSTS: 'hooks.a.example, *.b.example' }).WEBHOOK_ALLOWED_HOSTS).toBe('hooks.a.example, *.b.example');
    expect(() => loadConfig(ConfigSchema, { ...env, WEBHOOK_ALLOWED_HOSTS: 'a.example/path' })).toThrow(/WEBHOOK_ALLOWED_HOSTS/);
    expect(() => ownClientSecret({ SERVICE_CLIENT_SECRETS: '{"identity":"x"}' })).toThrow(/data-sharing/);
  });
});
