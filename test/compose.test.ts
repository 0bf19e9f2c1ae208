// docker-compose.yml cannot run on the build machines (no Docker engine), so keep it honest here: it
// parses, runs every service, and gives each one every variable its config schema requires.
import { SERVICES } from '@pipp/contracts';
import type { TObject } from '@sinclair/typebox';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('..', import.meta.url));
const compose = parse(readFileSync(`${root}/docker-compose.yml`, 'utf8'), { merge: true }) as {
  services: Record<string, { environment?: Record<string, unknown>; build?: { args?: { SERVICE?: string } }; image?: string }>;
};

/** Variables a schema requires that have no default. */
function requiredWithoutDefault(schema: TObject): string[] {
  return (schema.required ?? []).filter((k) => (schema.properties[k] as { default?: unknown }).default === undefined);
}

describe('docker-compose.yml', () => {
  it('runs the official MongoDB and Apache Kafka images', () => {
    expect(compose.services.mongo?.image).toMatch(/^mongo:/);
    expect(compose.services.kafka?.image).toMatch(/^apache\/kafka:/);
  });

  for (const service of SERVICES) {
    it(`builds ${service} and sets every variable its config requires`, async () => {
      const def = compose.services[service];
      expect(def, service).toBeDefined();
      expect(def!.build?.args?.SERVICE).toBe(service);
      const { ConfigSchema } = await import(`../apps/${service}/src/config.ts`) as { ConfigSchema: TObject };
      const env = def!.environment ?? {};
      const missing = requiredWithoutDefault(ConfigSchema).filter((v) => env[v] === undefined || env[v] === '');
      expect(missing, `${service} lacks`).toEqual([]);
    });
  }
});
