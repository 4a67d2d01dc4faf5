// The browser bundle of a minimal client (core, WebSocket transport, SASL with SCRAM, bind,
// stream management, lifecycle), minified and gzipped as a site would serve it. A size, not a
// timing: it is the same on every machine (give or take zlib's version), so a change that grows
// it past the budget fails here.
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import { expect, test } from 'vitest'

/**
 * Bytes, gzipped (level 9), of the minimal client: core, WebSocket, SCRAM, bind,
 * stream management and lifecycle. Measured 38,772 when SM and lifecycle joined the entry
 * (without them: 35,089 when set, 32,165 once @core/xml stopped loading ltx's index), and
 * 39,681 with the reader's recv speed-ups and SCRAM's cache (issue 9), and 40,033 with
 * stream management's `settle` option and compact queue; 40,258 once WebSocket messages were
 * read by ElementReader (the connection no longer imports StreamParser), SASLprep's tables were
 * re-encoded and browser builds lost SASL's node:crypto backend; 33,433 once stream
 * management's snapshots were read by ElementReader too (no StreamParser left in the bundle);
 * 34,067 after the core's idle-memory work and SM's write-text references; 33,788 once stream
 * management kept its state in one closure instead of a class with private fields. See
 * README.md before raising it.
 */
const BUDGET_GZIP = 33_900

const ENTRY = `
export { createConnection } from '@core/connection'
export { websocket } from '@transport/ws'
export { sasl } from '@client/sasl'
export { bind } from '@client/bind'
export { sm } from '@xep/0198-sm'
export { lifecycle } from '@hooks/lifecycle'
`

test('the minimal browser client (core, ws, SCRAM, bind, SM, lifecycle) stays within its size budget', async () => {
  const result = await build({
    stdin: { contents: ENTRY, resolveDir: new URL('.', import.meta.url).pathname, loader: 'ts' },
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    conditions: ['source'],
    minify: true,
    metafile: true,
    logLevel: 'silent',
  })
  const code = result.outputFiles[0]?.contents ?? new Uint8Array()
  const gzip = gzipSync(code, { level: 9 }).length
  const inputs = Object.keys(result.metafile.inputs)
  console.info(
    `browser bundle (core + ws + SCRAM + bind + SM + lifecycle): ${code.length} bytes minified, ${gzip} bytes gzipped (budget ${BUDGET_GZIP})`,
  )
  // What must never be in it: the Node WebSocket package and Node's built-in modules.
  expect(inputs.filter((i) => /\/ws\/lib\/|^node:|platform-node|backend-node/.test(i))).toEqual([])
  expect(gzip).toBeLessThanOrEqual(BUDGET_GZIP)
})
