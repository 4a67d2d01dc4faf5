#!/usr/bin/env node
// Assembles RESULTS.md from full runs on several Node versions (`run.mjs --json`, one file
// each): a summary of the ratios ours/xmpp.js per Node version, then each run's full table.
//
//   node apps/bench/run.mjs --no-build --json --out /tmp/n20.md > /tmp/n20.json
//   /path/to/node22 apps/bench/run.mjs --no-build --json --out /tmp/n22.md > /tmp/n22.json
//   /path/to/node24 apps/bench/run.mjs --no-build --json --out /tmp/n24.md > /tmp/n24.json
//   node apps/bench/results.mjs /tmp/n20.json /tmp/n22.json /tmp/n24.json [--note TEXT]
//
// Writes apps/bench/RESULTS.md (--out FILE elsewhere).

import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const HERE = dirname(fileURLToPath(import.meta.url))
const { values: args, positionals: files } = parseArgs({
  allowPositionals: true,
  options: { out: { type: 'string' }, note: { type: 'string', multiple: true } },
})
if (files.length === 0) {
  console.error('usage: results.mjs RUN.json [RUN.json ...] [--note TEXT] [--out FILE]')
  process.exit(2)
}

const runs = files.map((file) => {
  const text = readFileSync(file, 'utf8').trim().split('\n').pop() ?? ''
  return JSON.parse(text)
})
const major = (run) => run.node.replace(/^v(\d+).*/, 'Node $1')

const fmt = (x, digits = 2) =>
  typeof x === 'number' && Number.isFinite(x)
    ? x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : '–'
const targetText = (r) =>
  r.target === undefined ? '' : `${r.better === 'higher' ? '≥' : '≤'} ${fmt(r.target, 2)}`

// Every row name in the order of the first run that has it.
const names = []
for (const run of runs) for (const r of run.rows) if (!names.includes(r.name)) names.push(r.name)

const summary = [
  `| figure | better | target | ${runs.map(major).join(' | ')} |`,
  `|---|---|---|${runs.map(() => '---|').join('')}`,
  ...names.map((name) => {
    const first = runs.flatMap((run) => run.rows).find((r) => r.name === name)
    const cells = runs.map((run) => {
      const r = run.rows.find((x) => x.name === name)
      if (!r) return '–'
      const met = r.met === undefined ? '' : r.met ? ' ✓' : ' ✗'
      return `${fmt(r.ratio)}${met}`
    })
    return `| ${name} | ${first.better} | ${targetText(first)} | ${cells.join(' | ')} |`
  }),
]

const sections = runs.map(
  (run) =>
    `## ${major(run)} (${run.node})\n\n${run.machine.join('\n')}\n\n${run.table.join('\n')}\n\n${run.notes.map((n) => `- ${n}`).join('\n')}\n`,
)

const text = `# Benchmark results

Full \`pnpm bench\` runs, one per Node version, assembled by \`results.mjs\` (see
[README.md](README.md) for what each figure measures and how to reproduce). Each cell of the
summary is the ratio ours/xmpp.js of the medians (✓ target met, ✗ not met); the sections below
give each run's medians with min..max over its repetitions. Stream management (issue 11: send
rate and peak RSS with SM on / off for both clients, acking a backlog, socket loss to resumed
against Prosody) is measured by \`sm.mjs\`: see [SM-RESULTS.md](SM-RESULTS.md).

${(args.note ?? []).map((n) => `> ${n}`).join('\n>\n')}

${summary.join('\n')}

${sections.join('\n')}`
const out = args.out ? resolve(args.out) : join(HERE, 'RESULTS.md')
writeFileSync(out, text.replace(/\n{3,}/g, '\n\n'))
console.error(`results: written to ${out}`)
