import { defineConfig } from 'vitest/config';

/** One run over every package and app (what `make test` runs); each has its own vitest.config.ts. */
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'test'],
    maxWorkers: 3,
    reporters: ['default'],
  },
});
