import { fileURLToPath } from 'node:url';
import { defineProject, type UserWorkspaceConfig } from 'vitest/config';

const globalSetup = fileURLToPath(new URL('./packages/testing/dist/global-setup.js', import.meta.url));

/**
 * The vitest settings of every package: the shared global setup (real Kafka and FerretDB, started or
 * reused), generous timeouts for integration tests on 2 cores, and tests under test/.
 */
export function projectConfig(name: string, extra: UserWorkspaceConfig['test'] = {}) {
  return defineProject({
    test: {
      name,
      include: ['test/**/*.test.ts'],
      globalSetup: [globalSetup],
      testTimeout: 60_000,
      hookTimeout: 120_000,
      ...extra,
    },
  });
}
