// The browser bundle of a minimal client (core, WebSocket transport, SASL with SCRAM, bind,
// stream management, lifecycle), minified and gzipped as a site would serve it. A size, not a
// timing: it is the same on every machine (give or take zlib's version), so a change that grows
// it past the budget fails here. scripts/bundle-breakdown.mjs splits the same build per package.
import { expect, test } from 'vitest'
import { buildMinimalClient } from '../scripts/minimal-client.mjs'

/**
 * Bytes, gzipped (level 9), of the issue's minimal client: core, WebSocket, SCRAM, bind,
 * stream management and lifecycle. Measured 38,772 when SM and lifecycle joined the entry
 * (without them: 35,089 when set, 32,165 once @core/xml stopped loading ltx's index), and
 * 39,681 with the reader's recv speed-ups and SCRAM's cache (issue 9), and 40,033 with
 * stream management's `settle` option and compact queue; 40,258 once WebSocket messages were
 * read by ElementReader (the connection no longer imports StreamParser), SASLprep's tables were
 * re-encoded and browser builds lost SASL's node:crypto backend; 33,433 once stream
 * management's snapshots were read by ElementReader too (no StreamParser left in the bundle);
 * 34,067 after the core's idle-memory work and SM's write-text references (34,071 measured by
 * scripts/minimal-client.mjs); 32,401 once XEP-0156 discovery became opt-in, SASL's base64 used
 * btoa/atob, the serializer shared the reader's Name expression, JIDs' IPv6 check used the URL
 * parser, and the messages of ws, SASL, SCRAM, bind and lifecycle were shortened. See README.md before
 * raising it. 32,186 once stream management kept its state in one closure instead of a class
 * with private fields. 31,664 once JIDs were checked by one expression per part, lifecycle
 * kept its state in one closure, the WebSocket framing's reader became a closure, ElementReader
 * read character references with one expression, and error fields were declared, not defined.
 */
const BUDGET_GZIP = 31_700

test('the minimal browser client (core, ws, SCRAM, bind, SM, lifecycle) stays within its size budget', async () => {
  const { code, gzip, metafile } = await buildMinimalClient()
  const inputs = Object.keys(metafile.inputs)
  console.info(
    `browser bundle (core + ws + SCRAM + bind + SM + lifecycle): ${code.length} bytes minified, ${gzip} bytes gzipped (budget ${BUDGET_GZIP})`,
  )
  // What must never be in it: the Node WebSocket package and Node's built-in modules.
  expect(inputs.filter((i) => /\/ws\/lib\/|^node:|platform-node|backend-node/.test(i))).toEqual([])
  // Nor what only some clients use and import themselves: XEP-0156 discovery (`hostMeta()`),
  // the resumable StreamParser (TCP), ltx's parsers.
  const bundled = Object.entries(Object.values(metafile.outputs)[0]?.inputs ?? {})
    .filter(([, input]) => input.bytesInOutput > 0)
    .map(([path]) => path)
  expect(
    bundled.filter((i) => /ws\/src\/discovery|stream-parser|ltx\/src\/parsers/.test(i)),
  ).toEqual([])
  expect(gzip).toBeLessThanOrEqual(BUDGET_GZIP)
})
