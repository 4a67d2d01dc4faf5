import { describe, expect, test } from 'vitest'
import { authEventsSince, logMark, newClient, prosody, server } from './prosody.js'

const RUNS = 5

describe.skipIf(!prosody)('timing', () => {
  test(`start → online over STARTTLS + SCRAM-SHA-1: median of ${RUNS} (printed)`, async () => {
    const s = server()
    const mark = logMark()
    const times: number[] = []
    for (let i = 0; i < RUNS; i++) {
      const client = newClient('bob', { resource: `timing-${i}` })
      const started = performance.now()
      await client.connect()
      times.push(performance.now() - started)
      expect(client.state).toBe('online')
      expect(client.jid?.toString()).toBe(`bob@${s.domain}/timing-${i}`)
      await client.disconnect()
    }
    const sorted = [...times].sort((a, b) => a - b)
    const median = sorted[Math.floor(RUNS / 2)] ?? Number.NaN
    console.log(
      `interop: start → online median ${median.toFixed(1)} ms over ${RUNS} logins ` +
        `(${times.map((t) => t.toFixed(1)).join(', ')} ms; Prosody ${s.version}, loopback)`,
    )
    // What was timed were real logins: the server authenticated bob once per run (other
    // files may log bob in at the same time: at least RUNS), and never refused him.
    const bob = authEventsSince(mark).filter((e) => e.user === 'bob' && e.host === s.domain)
    expect(bob.filter((e) => e.outcome === 'auth-success').length).toBeGreaterThanOrEqual(RUNS)
    expect(bob.filter((e) => e.outcome === 'auth-failure')).toEqual([])
    // A login on loopback takes milliseconds: a median in seconds is a regression (a timer
    // on the login path, a retry), whatever the load of the machine.
    expect(times.every((t) => Number.isFinite(t) && t > 0)).toBe(true)
    expect(median).toBeLessThan(5000)
  })
})
