import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: files run in parallel forks, each on its own databases.
    pool: 'forks',
    reporters: ['default', './test/support/summary-reporter.ts'],
    // Type tests (`expectTypeOf`, `@ts-expect-error`) in test/types/*.test-d.ts, checked by tsc and reported as tests.
    typecheck: { enabled: true, include: ['test/types/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
  },
});
