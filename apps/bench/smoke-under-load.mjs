#!/usr/bin/env node
// Checks the smoke gate's claim: `pnpm --filter bench test` passes --runs times in a row while
// a neighbour (`pnpm test:unit`, started again each time it ends) loads the same machine. Stops
// at the first failure and keeps every run's log. Build first (`pnpm build`).
//
//   node apps/bench/smoke-under-load.mjs [--runs 20] [--no-neighbour] [--logs DIR]
//
// Prints one line per smoke run (the gated best pairs) and, at the end, how many runs passed
// and how many neighbour runs overlapped them. Exit code 0 only when every run passed.

import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    'no-neighbour': { type: 'boolean', default: false },
    logs: { type: 'string', default: join(tmpdir(), `bench-smoke-${process.pid}`) },
  },
})
const RUNS = Number(args.runs)
mkdirSync(args.logs, { recursive: true })

/** Runs a command in its own process group; resolves with its exit code and output. */
function run(cmd, argv, onChild) {
  return new Promise((done) => {
    const child = spawn(cmd, argv, { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    onChild?.(child)
    let text = ''
    child.stdout.on('data', (c) => (text += c))
    child.stderr.on('data', (c) => (text += c))
    child.on('close', (code, signal) => done({ code: code ?? signal, text }))
  })
}

// The neighbour: `pnpm test:unit` in a loop, each run in its own process group so that it can
// be stopped whole at the end.
let neighbour
let neighbourRuns = 0
let neighbourFailed = 0
let stopping = false
async function neighbourLoop() {
  while (!stopping) {
    const { code } = await run('pnpm', ['test:unit'], (child) => (neighbour = child))
    neighbour = undefined
    if (stopping) break
    neighbourRuns++
    if (code !== 0) neighbourFailed++
  }
}
const loop = args['no-neighbour'] ? Promise.resolve() : neighbourLoop()

let passed = 0
const t0 = Date.now()
for (let i = 1; i <= RUNS; i++) {
  const { code, text } = await run('pnpm', ['--filter', 'bench', 'test'])
  const log = join(args.logs, `smoke-${i}.log`)
  writeFileSync(log, text)
  const gates = [...text.matchAll(/(recv|send) throughput[^:]*: .*gated: best pair ([\d.]+)/g)]
    .map((m) => `${m[1]} ${m[2]}`)
    .join(', ')
  const min = ((Date.now() - t0) / 60000).toFixed(1)
  if (code !== 0) {
    console.log(`run ${i}: FAILED (exit ${code}; log ${log}) at ${min} min`)
    break
  }
  passed++
  console.log(`run ${i}: passed (best pairs: ${gates}) at ${min} min`)
}

stopping = true
if (neighbour?.pid) process.kill(-neighbour.pid, 'SIGTERM')
await loop
console.log(
  `${passed}/${RUNS} smoke runs passed in a row; ${args['no-neighbour'] ? 'no neighbour' : `neighbour \`pnpm test:unit\` completed ${neighbourRuns} times meanwhile (${neighbourFailed} failed)`}; logs in ${args.logs}`,
)
process.exit(passed === RUNS ? 0 : 1)
