// The minimal browser client (core, WebSocket, SCRAM, bind, stream management,
// lifecycle) built as a site would serve it: esbuild, minified, platform browser, es2022,
// gzip level 9. Shared by test/bundle-size.test.ts and scripts/bundle-breakdown.mjs so the
// budget and the per-package figures come from the same build.
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

export const ENTRY = `
export { createConnection } from '@core/connection'
export { websocket } from '@transport/ws'
export { sasl } from '@client/sasl'
export { bind } from '@client/bind'
export { sm } from '@xep/0198-sm'
export { lifecycle } from '@hooks/lifecycle'
`

export async function buildMinimalClient({ sourcemap = false } = {}) {
  const result = await build({
    stdin: { contents: ENTRY, resolveDir: new URL('.', import.meta.url).pathname, loader: 'ts' },
    bundle: true,
    write: false,
    outfile: 'minimal-client.js',
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    conditions: ['source'],
    minify: true,
    metafile: true,
    sourcemap: sourcemap ? 'external' : false,
    logLevel: 'silent',
  })
  const js = result.outputFiles.find((f) => f.path.endsWith('.js'))
  const map = result.outputFiles.find((f) => f.path.endsWith('.map'))
  const code = js?.contents ?? new Uint8Array()
  return {
    code,
    map: map ? JSON.parse(map.text) : undefined,
    gzip: gzipSync(code, { level: 9 }).length,
    metafile: result.metafile,
  }
}
