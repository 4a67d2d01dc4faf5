import { fileURLToPath } from 'node:url'
import { mergeConfig } from 'vitest/config'
import { sharedConfig } from '../../../vitest.shared.ts'

// The README's example uses @hooks/lifecycle, which cannot be a dependency of this package
// (lifecycle's tests depend on this one: turbo would see a cycle). Its source is aliased for
// the README test alone.
export default mergeConfig(sharedConfig, {
  resolve: {
    alias: {
      '@hooks/lifecycle': fileURLToPath(
        new URL('../../hooks/lifecycle/src/index.ts', import.meta.url),
      ),
    },
  },
})
