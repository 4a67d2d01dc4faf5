// Stream management against the in-process test server, over TCP with STARTTLS and SCRAM:
// what the server received and what the app was told.
import { createClient } from '@client/preset'
import { xml } from '@core/xml'
import { type SmServerOptions, startTestServer, type TestServer } from '@test/server'
import { afterEach, describe, expect, test } from 'vitest'
import { type SmOptions, sm } from '../src/index.js'

const servers: TestServer[] = []
const closers: (() => Promise<void>)[] = []

afterEach(async () => {
  for (const close of closers.splice(0)) await close()
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

async function server(smOptions: SmServerOptions = {}) {
  const s = await startTestServer({ users: { juliet: 'pw1', romeo: 'pw2' }, sm: smOptions })
  servers.push(s)
  return s
}

function client(s: TestServer, user: string, options: Partial<SmOptions> = {}) {
  const conn = createClient({
    service: s.service,
    jid: `${user}@localhost`,
    password: user === 'juliet' ? 'pw1' : 'pw2',
    resource: 'r',
    tls: { ca: s.certs.ca },
    // The outcome of each stanza through its send(): `settle: 'acked'`.
    plugins: [sm.with({ requestAfter: 20, settle: 'acked', ...options })],
  })
  closers.push(() => conn.dispose())
  return conn
}

/** Collects the ids of messages a client receives. */
function inbox(conn: ReturnType<typeof client>) {
  const ids: string[] = []
  conn.plugins.router.message((m) => {
    ids.push(String(m.attrs.id))
  })
  return ids
}

const to = (id: string) =>
  xml('message', { to: 'romeo@localhost/r', id, type: 'chat' }, xml('body', {}, id))

const until = async (ok: () => boolean, what: string, ms = 5000) => {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

describe('against @test/server', () => {
  test('enables after bind; send() resolves once the server acknowledged it', async () => {
    const s = await server()
    const juliet = client(s, 'juliet')
    const enabled = juliet.hooks.next('sm-enabled')
    await juliet.connect()
    expect(await enabled).toMatchObject({ resumable: true })
    await juliet.send(to('m1'))
    expect(juliet.plugins.sm.pending).toBe(0)
    expect(juliet.plugins.sm.outbound).toBe(1)
    const handled = s.log.filter((e) => e.type === 'stanza').length
    expect(handled).toBe(1)
  })

  test('a drop, messages sent during the outage, a resume: each arrives once, all acked', async () => {
    const s = await server()
    const romeo = client(s, 'romeo')
    const got = inbox(romeo)
    await romeo.connect()
    const juliet = client(s, 'juliet')
    await juliet.connect()
    await juliet.send(to('before'))
    const unacked = juliet.send(to('unacked'))
    s.sessions.at(-1)?.drop()
    await juliet.hooks.next('disconnected')
    expect(juliet.resumable).toBe(true)
    const during = [juliet.send(to('during1')), juliet.send(to('during2'))]
    const online = juliet.hooks.next('online')
    await juliet.connect()
    expect(await online).toEqual({ resumed: true })
    await Promise.all([unacked, ...during])
    await until(() => got.length >= 4, 'four messages')
    expect(got).toEqual(['before', 'unacked', 'during1', 'during2'])
    expect(s.log.filter((e) => e.type === 'sm' && e.event === 'resumed')).toHaveLength(1)
  })

  test('stanzas the server routed to a hibernating session arrive after the resume, counted once', async () => {
    const s = await server()
    const juliet = client(s, 'juliet')
    const got = inbox(juliet)
    await juliet.connect()
    const romeo = client(s, 'romeo')
    await romeo.connect()
    s.sessions.find((x) => x.username === 'juliet')?.drop()
    await juliet.hooks.next('disconnected')
    await romeo.send(xml('message', { to: 'juliet@localhost/r', id: 'while-away' }))
    await juliet.connect()
    await until(() => got.length === 1, 'the message')
    expect(got).toEqual(['while-away'])
    // The server learns it was handled: our h covers it.
    await juliet.plugins.sm.requestAck()
    const record = s.sessions.filter((x) => x.username === 'juliet').at(-1)
    expect(record?.sent.join('')).toContain('while-away')
  })

  test('resume after the hibernation expired: failed, a new session, the unacked reported failed', async () => {
    const s = await server({ hibernation: 0 })
    const juliet = client(s, 'juliet', { requestAfter: 60_000, requestEvery: 1000 })
    await juliet.connect()
    const lost = juliet.send(to('lost'))
    const failed: string[] = []
    juliet.hooks.on('sm-failed', ({ element }) => {
      failed.push(String(element.attrs.id))
    })
    await until(() => s.log.some((e) => e.type === 'stanza'), 'the stanza at the server')
    s.sessions.at(-1)?.drop()
    await juliet.hooks.next('disconnected')
    const online = juliet.hooks.next('online')
    await juliet.connect()
    expect(await online).toEqual({ resumed: false })
    // The server had handled it: <failed h='1'/> acknowledges it after all.
    await lost
    expect(failed).toEqual([])
    expect(juliet.plugins.sm.enabled).toBe(true)
    expect(s.log.filter((e) => e.type === 'sm' && e.event === 'failed')).toHaveLength(1)
  })

  test('a stanza the server never got, when resumption is refused, is reported failed', async () => {
    const s = await server()
    const juliet = client(s, 'juliet')
    await juliet.connect()
    s.sessions.at(-1)?.drop()
    await juliet.hooks.next('disconnected')
    // The outcome is observed from the start: it settles during connect().
    const held = juliet.send(to('held')).then(
      () => 'delivered',
      (error: unknown) => error,
    )
    s.faults = { smRefuseResume: true }
    await juliet.connect()
    expect(await held).toMatchObject({ code: 'not-delivered' })
    expect(s.log.some((e) => e.type === 'stanza' && e.element.attrs.id === 'held')).toBe(false)
  })

  test('withheld acks: send() stays pending and allAcked() waits; nothing is lost', async () => {
    const s = await server()
    s.faults = { smWithholdAcks: true }
    const juliet = client(s, 'juliet')
    await juliet.connect()
    let settled = false
    void juliet.send(to('w')).then(() => {
      settled = true
    })
    await until(() => s.log.some((e) => e.type === 'fault'), 'a withheld ack')
    expect(settled).toBe(false)
    expect(juliet.plugins.sm.pending).toBe(1)
    const controller = new AbortController()
    const waiting = juliet.plugins.sm.allAcked(controller.signal)
    controller.abort(new Error('gave up'))
    await expect(waiting).rejects.toThrow('gave up')
    const session = s.sessions.at(-1)
    if (session) session.faults = {}
    await juliet.plugins.sm.allAcked()
    expect(settled).toBe(true)
  })

  test.each([
    [{ smAckTooHigh: 5 }, 'handled-count-too-high'],
    [{ smMalformedH: '1x' }, 'undefined-condition'],
  ])(
    '%j: the client ends the stream and drops the session (no resume loop)',
    async (faults, what) => {
      const s = await server()
      s.faults = faults
      const juliet = client(s, 'juliet')
      await juliet.connect()
      const sending = juliet.send(to('x'))
      const gone = juliet.hooks.next('disconnected')
      await expect(sending).rejects.toMatchObject({ code: 'not-delivered' })
      expect(await gone).toMatchObject({ reason: 'stream-error', resumable: false })
      expect(juliet.resumable).toBe(false)
      const isError = (e: { name: string }) => e.name === 'stream:error' || e.name === 'error'
      await until(() => s.sessions.at(-1)?.received.some(isError) ?? false, 'the stream error')
      const error = s.sessions.at(-1)?.received.find(isError)
      expect(error?.toString()).toContain(what)
    },
  )

  test('counters starting near 2^32 wrap on both sides; a resume across the wrap', async () => {
    const start = 2 ** 32 - 3
    const s = await server({ counterStart: start })
    const juliet = client(s, 'juliet', { counterStart: start, requestEvery: 2 })
    const got = inbox(juliet)
    await juliet.connect()
    for (let i = 0; i < 5; i++) await juliet.send(to(`w${i}`))
    expect(juliet.plugins.sm.outbound).toBe(2)
    // Inbound: pings the server answers count too.
    for (let i = 0; i < 4; i++) await juliet.plugins.ping.ping()
    expect(juliet.plugins.sm.inbound).toBe(1)
    s.sessions.at(-1)?.drop()
    await juliet.hooks.next('disconnected')
    const online = juliet.hooks.next('online')
    await juliet.connect()
    expect(await online).toEqual({ resumed: true })
    await juliet.send(to('after'))
    // 5 messages, 4 pings and this one from 2^32 - 3.
    expect(juliet.plugins.sm.outbound).toBe(7)
    expect(got).toEqual([])
  })

  test('exportState() / importState(): another connection object resumes the session', async () => {
    const s = await server()
    const romeo = client(s, 'romeo')
    const got = inbox(romeo)
    await romeo.connect()
    s.faults = { smWithholdAcks: true }
    const first = client(s, 'juliet')
    await first.connect()
    const pending = first.send(to('carried')).then(
      () => 'acked',
      (error: unknown) => error,
    )
    await until(() => got.length === 1, 'the first copy at romeo')
    s.sessions.at(-1)?.drop()
    await first.hooks.next('disconnected')
    const during = first.send(to('during')).then(
      () => 'acked',
      (error: unknown) => error,
    )
    // JSON all the way, as a store would keep it.
    const snapshot = JSON.parse(JSON.stringify(first.plugins.sm.exportState()))
    expect(snapshot).toMatchObject({
      version: 1,
      written: 1,
      unacked: [expect.stringContaining('carried'), expect.stringContaining('during')],
    })
    s.faults = {}
    const second = client(s, 'juliet')
    const outcomes = second.plugins.sm.importState(snapshot)
    expect(outcomes).toHaveLength(2)
    const online = second.hooks.next('online')
    await second.connect()
    expect(await online).toEqual({ resumed: true })
    await Promise.all(outcomes)
    expect(second.jid?.toString()).toBe('juliet@localhost/r')
    await second.plugins.sm.requestAck()
    await romeo.plugins.ping.ping()
    // The server had the first: resumed h acknowledged it; only the other was sent again.
    await until(() => got.length === 2, 'the second message')
    expect(got).toEqual(['carried', 'during'])
    expect(second.plugins.sm.resent).toBe(1)
    // The exporting connection still reports what it saw: not delivered, on its side.
    await first.dispose()
    expect(await pending).toMatchObject({ code: 'not-delivered' })
    expect(await during).toMatchObject({ code: 'not-delivered' })
  })

  test('importState() refuses what is not a snapshot, and a connection with its own session', async () => {
    const s = await server()
    const juliet = client(s, 'juliet')
    const bad = {
      version: 1,
      id: 'x',
      jid: undefined,
      inbound: 0,
      acked: 0,
      written: 0,
      unacked: ['<nope'],
    }
    expect(() => juliet.plugins.sm.importState(bad as never)).toThrow(/not XML|one stanza/)
    // One stanza per entry, a stanza, and restricted XML.
    for (const unacked of [
      ["<message to='a@b'/><message to='a@b'/>"],
      ["<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"],
      ['<!DOCTYPE x><message/>'],
      ['just text'],
      [''],
    ]) {
      expect(() => juliet.plugins.sm.importState({ ...bad, unacked } as never)).toThrow(
        /not XML|one stanza/,
      )
    }
    expect(() => juliet.plugins.sm.importState({ ...bad, version: 2 } as never)).toThrow(/snapshot/)
    await juliet.connect()
    expect(() => juliet.plugins.sm.importState({ ...bad, unacked: [] } as never)).toThrow(
      /importState\(\) needs/,
    )
  })

  test('the server location from <enabled/> is where the resumption goes', async () => {
    const s = await server()
    const port = s.port
    const s2 = await startTestServer({
      users: { juliet: 'pw1' },
      sm: { location: `127.0.0.1:${port}` },
    })
    servers.push(s2)
    // The client enables on s2, which names s as the place to resume: s refuses (it does not
    // know the session), so a fresh session starts there.
    const juliet = createClient({
      service: s2.service,
      jid: 'juliet@localhost',
      password: 'pw1',
      tls: { ca: s2.certs.ca },
      plugins: [sm],
    })
    closers.push(() => juliet.dispose())
    await juliet.connect()
    expect(juliet.plugins.sm.location).toBe(`127.0.0.1:${port}`)
    s2.sessions.at(-1)?.drop()
    await juliet.hooks.next('disconnected')
    await juliet.connect()
    expect(s.log.filter((e) => e.type === 'sm' && e.event === 'failed')).toHaveLength(1)
  })
})
