// What a browser bundle of a minimal client pulls in: the `browser` condition must keep the
// `ws` package and Node's built-in modules out (they do not exist there; bundlers choke).
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { expect, test } from 'vitest'

const here = fileURLToPath(new URL('.', import.meta.url))

async function bundle(platform: 'browser' | 'node') {
  const result = await build({
    stdin: {
      contents: `
        export { createConnection } from '@core/connection'
        export { sasl } from '@client/sasl'
        export { bind } from '@client/bind'
        export { websocket } from '@transport/ws'
      `,
      resolveDir: here,
      loader: 'ts',
    },
    bundle: true,
    write: false,
    format: 'esm',
    platform,
    conditions: ['source'],
    metafile: true,
    logLevel: 'silent',
  })
  return Object.keys(result.metafile.inputs)
}

test('a browser bundle has no ws package and no node: module', async () => {
  const inputs = await bundle('browser')
  expect(inputs.some((i) => i.endsWith('src/platform-browser.ts'))).toBe(true)
  expect(inputs.filter((i) => /\/ws\/lib\/|platform-node|^node:/.test(i))).toEqual([])
  expect(inputs.some((i) => i.endsWith('src/websocket-transport.ts'))).toBe(true)
})

test('a Node bundle takes the node platform module (and ws, for Node 20)', async () => {
  const inputs = await bundle('node')
  expect(inputs.some((i) => i.endsWith('src/platform-node.ts'))).toBe(true)
  expect(inputs.some((i) => /node_modules\/.*\/ws\/lib\/websocket\.js$/.test(i))).toBe(true)
})
