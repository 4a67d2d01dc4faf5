// The smoke version of `pnpm bench`, in `pnpm test` (and so in CI): small N, 3 alternations
// of ours and xmpp.js, no Prosody. Each figure with a floor is one test, and fails only when
// the ratio ours/xmpp.js measured in this run falls below half of the target. No
// absolute time is ever asserted. The clients run the built packages (turbo builds them
// before this task).
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, test } from 'vitest'

interface Row {
  name: string
  better: 'higher' | 'lower'
  ratio: number
  floor?: number
  floorMet?: boolean
}

const RUN = fileURLToPath(new URL('../run.mjs', import.meta.url))
const FLOORS = [
  'recv throughput',
  'send throughput',
  'rtt p50 overhead over raw socket',
  'connection setup to online (scripted, no TLS)',
  'idle heap per connected client',
]

let rows: Row[] = []

beforeAll(() => {
  const res = spawnSync(process.execPath, [RUN, '--smoke', '--json', '--no-build'], {
    encoding: 'utf8',
    timeout: 110_000,
    maxBuffer: 64 * 1024 * 1024,
  })
  if (res.status !== 0) {
    throw new Error(`run.mjs --smoke failed (exit ${res.status ?? res.signal}):\n${res.stderr}`)
  }
  rows = JSON.parse(res.stdout.trim().split('\n').pop() ?? '').rows
  for (const r of rows) {
    const floor =
      r.floor === undefined
        ? ''
        : ` (floor ${r.better === 'higher' ? '≥' : '≤'} ${r.floor.toFixed(2)})`
    console.log(`${r.name}: ours/xmpp.js = ${r.ratio.toFixed(2)}, ${r.better} is better${floor}`)
  }
}, 120_000)

describe('bench smoke: ratios against xmpp.js in the same run', () => {
  test('every figure with a floor was measured', () => {
    const measured = rows.filter((r) => r.floor !== undefined).map((r) => r.name)
    expect(measured.sort()).toEqual([...FLOORS].sort())
  })

  test.each(FLOORS)('%s', (name) => {
    const r = rows.find((row) => row.name === name)
    expect(r, `${name} was not measured`).toBeDefined()
    const { ratio, floor, better } = r as Row & { floor: number }
    expect(Number.isFinite(ratio), `${name}: ratio ${ratio}`).toBe(true)
    if (better === 'higher') expect(ratio).toBeGreaterThanOrEqual(floor)
    else expect(ratio).toBeLessThanOrEqual(floor)
  })
})
