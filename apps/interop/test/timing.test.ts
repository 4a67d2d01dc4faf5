import { describe, expect, test } from 'vitest'
import { newClient, prosody, server } from './prosody.js'

const RUNS = 5

describe.skipIf(!prosody)('timing', () => {
  test(`start → online over STARTTLS + SCRAM-SHA-1: median of ${RUNS} (printed)`, async () => {
    const s = server()
    const times: number[] = []
    for (let i = 0; i < RUNS; i++) {
      const client = newClient('bob', { resource: `timing-${i}` })
      const started = performance.now()
      await client.connect()
      times.push(performance.now() - started)
      expect(client.jid?.toString()).toBe(`bob@${s.domain}/timing-${i}`)
      await client.disconnect()
    }
    const sorted = [...times].sort((a, b) => a - b)
    const median = sorted[Math.floor(RUNS / 2)] ?? Number.NaN
    console.log(
      `interop: start → online median ${median.toFixed(1)} ms over ${RUNS} logins ` +
        `(${times.map((t) => t.toFixed(1)).join(', ')} ms; Prosody ${s.version}, loopback)`,
    )
    expect(times).toHaveLength(RUNS)
  })
})
