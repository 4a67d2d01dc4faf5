// What a browser bundle of a minimal client pulls in: the `browser` condition must keep the
// `ws` package and Node's built-in modules out (they do not exist there; bundlers choke).
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { expect, test } from 'vitest'

const here = fileURLToPath(new URL('.', import.meta.url))

const ENTRY = `
  export { createConnection } from '@core/connection'
  export { sasl } from '@client/sasl'
  export { bind } from '@client/bind'
  export { websocket } from '@transport/ws'
`

async function bundle(platform: 'browser' | 'node') {
  const result = await build({
    stdin: { contents: ENTRY, resolveDir: here, loader: 'ts' },
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

/** The modules that put code into the browser bundle (not only read, then shaken out). */
async function bundled(): Promise<string[]> {
  const result = await build({
    stdin: { contents: ENTRY, resolveDir: here, loader: 'ts' },
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    conditions: ['source'],
    metafile: true,
    logLevel: 'silent',
    outfile: 'bundle.js',
  })
  const output = Object.values(result.metafile.outputs)[0]
  return Object.entries(output?.inputs ?? {})
    .filter(([, input]) => input.bytesInOutput > 0)
    .map(([path]) => path)
}

test('a browser bundle has no ws package and no node: module', async () => {
  const inputs = await bundle('browser')
  expect(inputs.some((i) => i.endsWith('src/platform-browser.ts'))).toBe(true)
  expect(inputs.filter((i) => /\/ws\/lib\/|platform-node|backend-node|^node:/.test(i))).toEqual([])
  expect(inputs.some((i) => i.endsWith('src/websocket-transport.ts'))).toBe(true)
})

test('a WebSocket-only bundle carries no StreamParser: messages are read whole (ElementReader)', async () => {
  const inputs = await bundled()
  expect(inputs.some((i) => i.endsWith('core/xml/src/element-reader.ts'))).toBe(true)
  expect(inputs.filter((i) => i.endsWith('core/xml/src/stream-parser.ts'))).toEqual([])
})

test('a Node bundle takes the node platform module (and ws, for Node 20)', async () => {
  const inputs = await bundle('node')
  expect(inputs.some((i) => i.endsWith('src/platform-node.ts'))).toBe(true)
  expect(inputs.some((i) => /node_modules\/.*\/ws\/lib\/websocket\.js$/.test(i))).toBe(true)
})
