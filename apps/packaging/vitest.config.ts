import { defineConfig, mergeConfig } from 'vitest/config'
import { sharedConfig } from '../../vitest.shared.ts'

// The consumer test and the release dry run pack, install and compile: minutes of margin on
// a loaded machine, though each takes seconds.
export default mergeConfig(
  sharedConfig,
  defineConfig({
    test: {
      testTimeout: 180_000,
      hookTimeout: 180_000,
    },
  }),
)
