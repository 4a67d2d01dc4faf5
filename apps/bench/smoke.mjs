#!/usr/bin/env node
// The smoke version of `pnpm bench`: small N, 3 alternations, no Prosody. It fails (exit 1)
// only when a ratio against xmpp.js, measured in the same run, falls below half of the
// issue's target; never on an absolute time. Needs the packages built (`pnpm build`).
//
// Not yet part of `pnpm test` / CI: the idle-memory floor is not met yet (see RESULTS.md and
// the issue note); it joins the test task once every floor holds.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const RUN = fileURLToPath(new URL('./run.mjs', import.meta.url))
const EXPECTED = [
  'connection setup to online (scripted, no TLS)',
  'idle RSS per connected client',
  'recv throughput',
  'rtt p50 overhead over raw socket',
  'send throughput',
]

const res = spawnSync(process.execPath, [RUN, '--smoke', '--json', '--no-build'], {
  encoding: 'utf8',
  timeout: 85_000,
  maxBuffer: 64 * 1024 * 1024,
  stdio: ['ignore', 'pipe', 'inherit'],
})
if (res.status !== 0) {
  console.error(`run.mjs --smoke failed (exit ${res.status ?? res.signal})`)
  process.exit(1)
}
const { rows } = JSON.parse(res.stdout.trim().split('\n').pop() ?? '')
const floors = rows.filter((r) => r.floor !== undefined)
for (const r of rows) {
  const limit =
    r.floor === undefined
      ? ''
      : ` (floor ${r.better === 'higher' ? '≥' : '≤'} ${r.floor.toFixed(2)})`
  console.log(`${r.name}: ours/xmpp.js = ${r.ratio.toFixed(2)}, ${r.better} is better${limit}`)
}
const names = floors.map((r) => r.name).sort()
if (JSON.stringify(names) !== JSON.stringify(EXPECTED)) {
  console.error(`smoke: expected floors for ${EXPECTED.join(', ')}; measured ${names.join(', ')}`)
  process.exit(1)
}
const below = floors.filter((r) => !r.floorMet)
for (const r of below)
  console.error(`below the floor: ${r.name}: ${r.ratio.toFixed(2)} (floor ${r.floor.toFixed(2)})`)
process.exit(below.length === 0 ? 0 : 1)
