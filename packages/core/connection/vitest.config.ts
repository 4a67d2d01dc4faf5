import { fileURLToPath } from 'node:url'
import { defineConfig, mergeConfig } from 'vitest/config'
import { sharedConfig } from '../../../vitest.shared.ts'

// @test/memory-peer depends on this package, so this package's tests reach it by path
// (an alias here, `paths` in tsconfig.json) rather than as a dependency: no cycle for turbo.
const memoryPeer = fileURLToPath(new URL('../../test/memory-peer/src/index.ts', import.meta.url))
// The same for RFC 7395's framing, which @transport/ws brings: the tests need only that module.
const wsFraming = fileURLToPath(new URL('../../transport/ws/src/framing.ts', import.meta.url))

// The connection-level tests (test/) run twice: over the XML stream framing (RFC 6120, TCP)
// and over RFC 7395's message framing (WebSocket), through MemoryPeer. The reader's tests
// (src/), the byte-level hostile-input tests and the framing's own tests run once.
export default mergeConfig(
  sharedConfig,
  defineConfig({
    resolve: { alias: { '@test/memory-peer': memoryPeer, '@transport/ws': wsFraming } },
    test: {
      projects: [
        { extends: true, test: { name: 'xml-stream' } },
        {
          extends: true,
          test: {
            name: 'websocket-framing',
            exclude: ['src/**', 'test/hostile-input.test.ts', 'test/readme.test.ts'],
            env: { XMPP_TEST_FRAMING: 'websocket' },
          },
        },
      ],
    },
  }),
)
