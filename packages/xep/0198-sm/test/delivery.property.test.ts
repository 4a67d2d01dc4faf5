// The reliability contract of stream management, as a property: for a random stream of
// stanzas and random cut points (the server drops the socket after reading a random number
// of bytes, several times in a row), every stanza reaches the server's handler exactly once
// and is reported acked; when the server refuses to resume, every stanza is either handled
// by the server or reported failed, never both and never neither.
import { createClient } from '@client/preset'
import { xml } from '@core/xml'
import { startTestServer, type TestServer } from '@test/server'
import fc from 'fast-check'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { sm } from '../src/index.js'

let server: TestServer
let run = 0

beforeAll(async () => {
  server = await startTestServer({
    users: { juliet: 'pw' },
    // PLAIN over TLS: each run logs in several times, and SCRAM's PBKDF2 is not under test.
    mechanisms: ['PLAIN'],
    sm: { hibernation: 60_000 },
  })
})

afterAll(async () => {
  await server.close()
})

type Outcome = 'acked' | 'failed'

/**
 * Sends `count` stanzas at once, then keeps reconnecting (resuming) after each drop until
 * every send() settled. The session of each attempt drops after reading `cuts[i]` bytes
 * (counted from binding or resuming); attempts past the cuts run without a fault.
 */
async function deliver(count: number, cuts: readonly number[], refuse: boolean) {
  const tag = `run${++run}`
  const conn = createClient({
    service: server.service,
    jid: 'juliet@localhost',
    password: 'pw',
    resource: tag,
    tls: { ca: server.certs.ca },
    timeouts: { connect: 5000, negotiation: 5000, close: 500 },
    // Each stanza's report is its send(), settled on the ack: `settle: 'acked'`.
    plugins: [sm.with({ requestAfter: 5, requestEvery: 50, settle: 'acked' })],
  })
  let attempt = 0
  const faultFor = (i: number) => {
    const cut = cuts[i]
    const f = cut === undefined ? {} : { closeAfterBytes: cut }
    // Refusal applies to resumptions (every attempt after the first).
    return refuse && i > 0 ? { ...f, smRefuseResume: true } : f
  }
  const connect = async () => {
    for (;;) {
      server.faults = faultFor(attempt++)
      try {
        await conn.connect()
        return
      } catch {
        // A cut during negotiation: try again (resuming when the session allows it).
      }
    }
  }
  await connect()
  const outcomes: Promise<Outcome>[] = []
  for (let i = 0; i < count; i++) {
    const stanza = xml('message', { to: 'romeo@localhost', id: `${tag}-${i}` })
    outcomes.push(
      conn.send(stanza).then(
        (): Outcome => 'acked',
        (): Outcome => 'failed',
      ),
    )
  }
  const all = Promise.all(outcomes)
  let done = false
  void all.then(() => {
    done = true
  })
  while (!done) {
    if (conn.state === 'disconnected') await connect()
    else await new Promise((r) => setTimeout(r, 2))
  }
  const results = await all
  await conn.dispose()
  const handled = new Map<string, number>()
  for (const e of server.log) {
    if (e.type !== 'stanza') continue
    const id = String(e.element.attrs.id)
    if (id.startsWith(`${tag}-`)) handled.set(id, (handled.get(id) ?? 0) + 1)
  }
  return { tag, results, handled, attempts: attempt }
}

const cutsArb = fc.array(fc.integer({ min: 0, max: 60_000 }), { minLength: 1, maxLength: 3 })

test('with resumption: every stanza is handled by the server exactly once and reported acked', async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 5000 }), cutsArb, async (count, cuts) => {
      const { tag, results, handled } = await deliver(count, cuts, false)
      for (let i = 0; i < count; i++) {
        expect(handled.get(`${tag}-${i}`) ?? 0, `${tag}-${i} handled`).toBe(1)
        expect(results[i], `${tag}-${i} outcome`).toBe('acked')
      }
    }),
    { numRuns: 12 },
  )
}, 120_000)

test('resumption refused: every stanza is handled by the server xor reported failed', async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 5000 }), cutsArb, async (count, cuts) => {
      const { tag, results, handled } = await deliver(count, cuts, true)
      for (let i = 0; i < count; i++) {
        const times = handled.get(`${tag}-${i}`) ?? 0
        expect(times, `${tag}-${i} handled at most once`).toBeLessThanOrEqual(1)
        expect(results[i] === 'acked', `${tag}-${i}: handled xor failed`).toBe(times === 1)
      }
    }),
    { numRuns: 12 },
  )
}, 120_000)
