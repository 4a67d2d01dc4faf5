#!/usr/bin/env node
// Profiles one client in one workload with `node --cpu-prof` and prints the functions with the
// most self time (aggregated by function name and file), so that optimisation starts from
// what the profile shows. Build first (`pnpm bench --only recv` builds, or turbo).
//
//   node apps/bench/profile.mjs recv|send|rtt|setup [--client ours|xmppjs] [--n N] [--top 15]
//                               [--shape chat|chat-rich|presence|roster|groupchat]  (recv)
//                               [--sm]  (stream management on)
//   node apps/bench/profile.mjs --summarise FILE.cpuprofile [--top 15]
//
// The .cpuprofile is kept in apps/bench/profiles/ (git-ignored: *.cpuprofile); open it in
// Chrome DevTools (Performance) or VS Code for the call tree.

import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startBenchServer } from './bench-server.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = resolve(HERE, '../..')

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    client: { type: 'string', default: 'ours' },
    n: { type: 'string' },
    top: { type: 'string', default: '15' },
    summarise: { type: 'string' },
    shape: { type: 'string', default: 'chat' },
    // Stream management on (server offers it; ours adds @xep/0198-sm).
    sm: { type: 'boolean', default: false },
  },
})
const TOP = Number(args.top)

/** Self time per function (name + file), from the samples and time deltas of a .cpuprofile. */
function summarise(file, top = TOP) {
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map()
  let total = 0
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0
    total += dt
    const node = byId.get(id)
    const { functionName, url, lineNumber } = node.callFrame
    const where = url ? shorten(url) : ''
    const key = `${functionName || '(anonymous)'}  ${where}`
    const entry = self.get(key) ?? { us: 0, line: lineNumber + 1 }
    entry.us += dt
    self.set(key, entry)
  })
  const rows = [...self.entries()].sort((a, b) => b[1].us - a[1].us).slice(0, top)
  const lines = [`total sampled: ${(total / 1000).toFixed(0)} ms   (${file})`]
  lines.push('  self ms   self %  function  file')
  for (const [key, { us }] of rows) {
    lines.push(
      `${(us / 1000).toFixed(1).padStart(8)}  ${((100 * us) / total).toFixed(1).padStart(6)}%  ${key}`,
    )
  }
  return lines.join('\n')
}

function shorten(url) {
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  if (!path.startsWith('/')) return path
  const rel = relative(ROOT, path)
  const store = rel.lastIndexOf('node_modules/')
  return store >= 0
    ? rel.slice(store + 'node_modules/'.length).replace(/^\.pnpm\/[^/]+\/node_modules\//, '')
    : rel
}

if (args.summarise) {
  console.log(summarise(args.summarise))
  process.exit(0)
}

const workload = positionals[0] ?? 'recv'
const SIZES = { recv: 200_000, send: 200_000, rtt: 5_000, setup: 2_000 }
const SERVER_MODE = { setup: 'idle' }
if (!(workload in SIZES)) {
  console.error('usage: profile.mjs recv|send|rtt|setup [--client ours|xmppjs] [--n N] [--top 15]')
  process.exit(2)
}
const n = Number(args.n ?? SIZES[workload])
const dir = join(HERE, 'profiles')
mkdirSync(dir, { recursive: true })

const server = await startBenchServer([
  '--mode',
  SERVER_MODE[workload] ?? workload,
  '--n',
  String(n),
  '--shape',
  args.shape,
  ...(args.sm ? ['--sm'] : []),
])
const port = server.port
const label = workload === 'recv' ? `recv-${args.shape}` : workload
const name = `${args.client}-${label}-${Date.now()}.cpuprofile`
const res = spawnSync(
  process.execPath,
  [
    '--cpu-prof',
    `--cpu-prof-dir=${dir}`,
    `--cpu-prof-name=${name}`,
    join(HERE, 'client.mjs'),
    '--client',
    args.client,
    '--workload',
    workload,
    '--n',
    String(n),
    '--service',
    `xmpp://127.0.0.1:${port}`,
    '--shape',
    args.shape,
    ...(args.sm ? ['--sm'] : []),
  ],
  { encoding: 'utf8', timeout: 180_000 },
)
await server.stop()
if (res.status !== 0) {
  console.error(`the client failed (exit ${res.status ?? res.signal}):\n${res.stderr}`)
  process.exit(1)
}
console.log(`${args.client} ${label} ${n.toLocaleString('en-US')}: ${res.stdout.trim()}`)
const file = join(dir, name)
statSync(file)
console.log(summarise(file))
