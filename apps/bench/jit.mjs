#!/usr/bin/env node
// How often V8 compiles and throws away the reader's code in one recv run of our client: the
// bench times a stream from its first stanza, so each deoptimisation of the reader's hot loop
// (and the recompilation after it, on a compiler thread that process CPU counts) shows in the
// recv figures, most on the short runs (roster). Build first.
//
//   node apps/bench/jit.mjs [--shape roster] [--n 25000] [--client ours|xmppjs] [--all]
//
// Prints the run's figures, TurboFan compiles per function (count and compiler ms, from
// --trace-opt) and the deoptimisations (--trace-deopt) of the reader's functions (--all: of
// every function), each with its bytecode offset and reason. An offset maps to a line with
// `node --print-bytecode --print-bytecode-filter=_parse` on a small stream.

import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startBenchServer } from './bench-server.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const { values: args } = parseArgs({
  options: {
    shape: { type: 'string', default: 'roster' },
    n: { type: 'string' },
    client: { type: 'string', default: 'ours' },
    all: { type: 'boolean', default: false },
  },
})
const n = args.n ?? (args.shape === 'roster' ? '25000' : '100000')
const READER =
  /^(_parse|_rare|_open|_close|_feed|_decode|_chunkEnd|_emit|readName|nameStartWidth|isSpace|scanName)$/

const server = await startBenchServer(['--mode', 'recv', '--n', n, '--shape', args.shape])
const port = server.port
const res = spawnSync(
  process.execPath,
  [
    '--trace-opt',
    '--trace-deopt',
    join(HERE, 'client.mjs'),
    '--client',
    args.client,
    '--workload',
    'recv',
    '--n',
    n,
    '--service',
    `xmpp://127.0.0.1:${port}`,
    '--shape',
    args.shape,
  ],
  { encoding: 'utf8', maxBuffer: 1 << 30, timeout: 180_000 },
)
await server.stop()
if (res.status !== 0) {
  console.error(`the client failed (exit ${res.status ?? res.signal}):\n${res.stderr}`)
  process.exit(1)
}

const compiles = new Map()
const deopts = []
for (const line of res.stdout.split('\n')) {
  let m = line.match(/completed compiling .*?<JSFunction ([^ ]*) ?\(sfi.*took [0-9.]+, ([0-9.]+),/)
  if (m) {
    const entry = compiles.get(m[1] || '(anonymous)') ?? { count: 0, ms: 0 }
    entry.count++
    entry.ms += Number(m[2])
    compiles.set(m[1] || '(anonymous)', entry)
    continue
  }
  m = line.match(
    /bailout \(kind: ([^,]+), reason: ([^)]+)\).*?<JSFunction ([^ ]*) .*bytecode offset (\d+)/,
  )
  if (m && (args.all || READER.test(m[3]))) deopts.push(`${m[3]}@${m[4]}  ${m[1]}: ${m[2]}`)
}
const figures = res.stdout.split('\n').find((l) => l.startsWith('{'))
console.log(`${args.client} recv-${args.shape} ${Number(n).toLocaleString('en-US')}: ${figures}`)
console.log('TurboFan compiles (count, compiler ms):')
for (const [name, { count, ms }] of [...compiles].sort((a, b) => b[1].ms - a[1].ms).slice(0, 10)) {
  console.log(`  ${name.padEnd(36)} ${String(count).padStart(3)}  ${ms.toFixed(0).padStart(6)}`)
}
console.log(`deoptimisations${args.all ? '' : ' of the reader'}: ${deopts.length}`)
for (const d of deopts) console.log(`  ${d}`)
