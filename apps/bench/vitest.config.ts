import { defineConfig, mergeConfig } from 'vitest/config'
import { sharedConfig } from '../../vitest.shared.ts'

// One test file that runs the bench smoke (about two minutes): no other test in parallel with
// it, so that the measured ratios are not disturbed.
export default mergeConfig(
  sharedConfig,
  defineConfig({
    test: {
      fileParallelism: false,
      testTimeout: 30_000,
    },
  }),
)
