#!/usr/bin/env node
// Where the bytes of the minimal browser client go, per package (or per file with --files).
//   node apps/web/scripts/bundle-breakdown.mjs [--files] [--json]
// min:      minified bytes each input adds to the bundle (esbuild's metafile, bytesInOutput).
// gz alone: the package's own slice of the minified output (found through the source map),
//           gzipped by itself at level 9; a slice compresses worse alone than inside the whole
//           bundle, so these add up to more than the bundle's gzip.
// gz share: the bundle's gzip split in proportion to the gz-alone figures; they add up to it.
import { gzipSync } from 'node:zlib'
import { buildMinimalClient } from './minimal-client.mjs'

const perFile = process.argv.includes('--files')
const asJson = process.argv.includes('--json')

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const B64_VALUE = new Map([...B64].map((c, i) => [c, i]))

/** Decodes one source-map segment (base64 VLQ) into its numbers. */
function decodeSegment(segment) {
  const values = []
  let value = 0
  let shift = 0
  for (const c of segment) {
    const digit = B64_VALUE.get(c)
    value += (digit & 31) << shift
    if (digit & 32) {
      shift += 5
      continue
    }
    values.push(value & 1 ? -(value >>> 1) : value >>> 1)
    value = 0
    shift = 0
  }
  return values
}

/** The minified text attributed to each source: Map<source index | -1, string[]>. */
function sliceBySource(code, map) {
  const slices = new Map()
  const add = (source, text) => {
    if (!text) return
    const list = slices.get(source) ?? []
    list.push(text)
    slices.set(source, list)
  }
  const lines = code.split('\n')
  const mappingLines = map.mappings.split(';')
  let source = 0
  for (let l = 0; l < lines.length; l++) {
    const line = lines[l] + (l < lines.length - 1 ? '\n' : '')
    let column = 0
    let start = 0
    let current = -1
    for (const segment of (mappingLines[l] ?? '').split(',')) {
      if (!segment) continue
      const [dColumn, dSource] = decodeSegment(segment)
      column += dColumn
      add(current, line.slice(start, column))
      if (dSource !== undefined) {
        source += dSource
        current = source
      } else current = -1
      start = column
    }
    add(current, line.slice(start))
  }
  return slices
}

/** `packages/core/jid/src/jid.ts` -> `@core/jid`; `node_modules/ltx/lib/Element.js` -> `ltx`. */
function packageOf(path) {
  const workspace = /(?:^|\/)packages\/([^/]+)\/([^/]+)\//.exec(path)
  if (workspace) return `@${workspace[1]}/${workspace[2]}`
  const dependency = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*node_modules\/)/.exec(path)
  if (dependency) return dependency[1]
  return path
}

const plain = await buildMinimalClient()
const mapped = await buildMinimalClient({ sourcemap: true })
const code = new TextDecoder().decode(mapped.code)
if (code !== new TextDecoder().decode(plain.code)) {
  throw new Error('the source-mapped build differs from the measured one')
}
const output = Object.values(plain.metafile.outputs)[0]
const slices = sliceBySource(code, mapped.map)

const groups = new Map()
const keyOf = (path) => (perFile ? path.replace(/^(\.\.\/)+/, '') : packageOf(path))
const group = (key) => {
  const g = groups.get(key) ?? { name: key, min: 0, text: [] }
  groups.set(key, g)
  return g
}
for (const [path, { bytesInOutput }] of Object.entries(output.inputs)) {
  if (bytesInOutput > 0) group(keyOf(path)).min += bytesInOutput
}
for (const [index, texts] of slices) {
  const key = index < 0 ? '(glue)' : keyOf(mapped.map.sources[index])
  group(key).text.push(...texts)
}
const rows = [...groups.values()].map((g) => ({
  name: g.name,
  min: g.min,
  gzAlone: g.text.length ? gzipSync(g.text.join(''), { level: 9 }).length : 0,
}))
const aloneTotal = rows.reduce((s, r) => s + r.gzAlone, 0)
for (const r of rows) r.gzShare = Math.round((plain.gzip * r.gzAlone) / aloneTotal)
rows.sort((a, b) => b.gzAlone - a.gzAlone)

if (asJson) {
  console.log(JSON.stringify({ min: plain.code.length, gzip: plain.gzip, rows }, null, 2))
} else {
  const pad = (s, n) => String(s).padStart(n)
  const nameWidth = Math.max(...rows.map((r) => r.name.length), 5)
  console.log(
    `${'input'.padEnd(nameWidth)} ${pad('min', 7)} ${pad('gz alone', 9)} ${pad('gz share', 9)}`,
  )
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(nameWidth)} ${pad(r.min, 7)} ${pad(r.gzAlone, 9)} ${pad(r.gzShare, 9)}`,
    )
  }
  console.log(
    `${'bundle'.padEnd(nameWidth)} ${pad(plain.code.length, 7)} ${pad('', 9)} ${pad(plain.gzip, 9)}`,
  )
}
