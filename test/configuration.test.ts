// docs/configuration.md lists every variable of every service's config schema.
import { SERVICES } from '@pipp/contracts';
import type { TObject } from '@sinclair/typebox';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const doc = readFileSync(fileURLToPath(new URL('../docs/configuration.md', import.meta.url)), 'utf8');

it('documents every configuration variable', async () => {
  const missing: string[] = [];
  for (const service of SERVICES) {
    const { ConfigSchema } = await import(`../apps/${service}/src/config.ts`) as { ConfigSchema: TObject };
    for (const variable of Object.keys(ConfigSchema.properties)) {
      if (!doc.includes(`\`${variable}\``)) missing.push(`${service}: ${variable}`);
    }
  }
  expect(missing).toEqual([]);
});
