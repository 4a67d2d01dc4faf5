import { defineConfig } from 'vitest/config'

// Shared by every package's vitest.config.ts. Tests run on sibling packages' src/
// through the "source" export condition; the JSON report lets scripts/run-tests.mjs
// check that every test file in the repo really ran.
export const sharedConfig = defineConfig({
  ssr: { resolve: { conditions: ['source'] } },
  resolve: { conditions: ['source'] },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest-report.json' },
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
})
