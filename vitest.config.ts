import { defineConfig } from 'vitest/config';

// Tests import the library by name from its TypeScript source (the package's `@mikro-orm-sharding/source` export
// condition, listed before Vite's default server conditions); the published package resolves to dist/ instead.
const conditions = ['@mikro-orm-sharding/source', 'module', 'node', 'development|production'];

export default defineConfig({
  ssr: { resolve: { conditions } },
  test: {
    include: ['test/**/*.test.ts', 'docs/examples/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: files run in parallel forks, each on its own databases.
    pool: 'forks',
    reporters: ['default', './test/support/summary-reporter.ts'],
    // Type tests (`expectTypeOf`, `@ts-expect-error`) in test/types/*.test-d.ts, checked by tsc and reported as tests.
    typecheck: { enabled: true, include: ['test/types/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
  },
});
