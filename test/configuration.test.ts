// Every variable of every service's config schema is documented: the shared ones in
// docs/configuration.md, a service's own in docs/services/<service>.md.
import { SERVICES } from '@pipp/contracts';
import type { TObject } from '@sinclair/typebox';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const read = (path: string) => {
  const file = fileURLToPath(new URL(`../${path}`, import.meta.url));
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
};
const shared = read('docs/configuration.md');

it('documents every configuration variable', async () => {
  const missing: string[] = [];
  for (const service of SERVICES) {
    const { ConfigSchema } = await import(`../apps/${service}/src/config.ts`) as { ConfigSchema: TObject };
    const own = read(`docs/services/${service}.md`);
    for (const variable of Object.keys(ConfigSchema.properties)) {
      if (!shared.includes(`\`${variable}\``) && !own.includes(`\`${variable}\``)) missing.push(`${service}: ${variable}`);
    }
  }
  expect(missing).toEqual([]);
});
