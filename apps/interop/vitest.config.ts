import { defineConfig, mergeConfig } from 'vitest/config'
import { sharedConfig } from '../../vitest.shared.ts'

// One Prosody for the whole suite: test/global-setup.ts starts it (scripts/prosody.mjs) and
// stops it at the end; the test files get its state through inject('prosody').
export default mergeConfig(
  sharedConfig,
  defineConfig({
    test: {
      globalSetup: ['./test/global-setup.ts'],
    },
  }),
)
