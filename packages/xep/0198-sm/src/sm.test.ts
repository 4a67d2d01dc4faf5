import { bind } from '@client/bind'
import { type AnyPlugin, createConnection } from '@core/connection'
import { MemoryPeer } from '@test/memory-peer'
import { iq } from '@core/iq'
import { router } from '@core/router'
import { xml } from '@core/xml'
import { describe, expect, test } from 'vitest'
import { NS_SM, type SmOptions, sm } from './index.js'

const SHORT = { connect: 500, negotiation: 500, close: 200, pluginSetup: 500 }
const FEATURES = `<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='${NS_SM}'/>`
const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms))
const msg = (id: string) => xml('message', { to: 'romeo@example.com', id }, xml('body', {}, id))

function client(options: Partial<SmOptions> = {}, extra: readonly AnyPlugin[] = []) {
  const peer = new MemoryPeer()
  const conn = createConnection({
    transport: peer.transport,
    domain: 'example.com',
    timeouts: SHORT,
    // Most tests here follow each stanza's outcome through its send(): `settle: 'acked'`
    // (the default, `written`, has its own tests below).
    plugins: [bind, sm.with({ requestAfter: 60_000, settle: 'acked', ...options }), ...extra] as [
      typeof bind,
      typeof sm,
    ],
  })
  return { peer, conn }
}

/** Answers bind, then the enable request with `enabled` (raw XML). */
async function negotiate(peer: MemoryPeer, enabled: string, features = FEATURES) {
  await peer.nextHeader()
  peer.open({ features })
  const iq = await peer.nextElement()
  expect(iq.getChild('bind')).toBeDefined()
  peer.send(
    `<iq type='result' id='${iq.attrs.id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>juliet@example.com/r</jid></bind></iq>`,
  )
  const enable = await peer.nextElement()
  expect(enable.name).toBe('enable')
  if (enabled) peer.send(enabled)
  return enable
}

async function online(
  options: Partial<SmOptions> = {},
  id = 'sess-1',
  extra: readonly AnyPlugin[] = [],
) {
  const { peer, conn } = client(options, extra)
  const connecting = conn.connect()
  const enable = await negotiate(peer, `<enabled xmlns='${NS_SM}' id='${id}' resume='true'/>`)
  await connecting
  return { peer, conn, enable }
}

/** Online with settle 'written', one stanza `before` sent and read, then the socket dropped. */
async function droppedAfterOne() {
  return droppedAfterOneWith({})
}

async function droppedAfterOneWith(options: Partial<SmOptions>) {
  const ctx = await online({ settle: 'written', ...options })
  await ctx.conn.send(msg('before'))
  await take(ctx.peer, 1)
  ctx.peer.close(new Error('ECONNRESET'))
  await tick()
  return ctx
}

/** The next connect() resumes: the peer answers `<resume/>` with `<resumed h='0'/>`. */
async function resumeWithNothingAcked(peer: MemoryPeer, conn: { connect(): Promise<void> }) {
  const again = conn.connect()
  await peer.nextHeader()
  peer.open({ features: FEATURES })
  await peer.nextElement() // <resume/>
  peer.send(`<resumed xmlns='${NS_SM}' previd='sess-1' h='0'/>`)
  await again
}

/** Elements the peer received from now on, up to `n`. */
async function take(peer: MemoryPeer, n: number) {
  const out = []
  for (let i = 0; i < n; i++) out.push(await peer.nextElement())
  return out
}

describe('enabling (XEP-0198 §3)', () => {
  test("after bind, sends <enable resume='true'/> once; <enabled/> with an id makes the session resumable", async () => {
    const { conn, enable } = await online()
    expect(enable.attrs).toEqual({ xmlns: NS_SM, resume: 'true' })
    expect(conn.plugins.sm).toMatchObject({ enabled: true, resumable: true, id: 'sess-1' })
    expect(conn.resumable).toBe(true)
  })

  test('resume off: no resume attribute, never resumable; max is sent when set', async () => {
    const { peer, conn } = client({ resume: false, max: 60 })
    const connecting = conn.connect()
    const enable = await negotiate(peer, `<enabled xmlns='${NS_SM}' id='x' resume='true'/>`)
    await connecting
    expect(enable.attrs).toEqual({ xmlns: NS_SM, max: '60' })
    expect(conn.plugins.sm.resumable).toBe(false)
    expect(conn.resumable).toBe(false)
  })

  test.each([
    ["resume='false' id='a'", false],
    ["resume='1' id='a'", true],
    ["resume='yes' id='a'", false],
    ["resume='true'", false],
    ["resume='true' id=''", false],
  ])('<enabled %s/>: resumable %s', async (attrs, resumable) => {
    const { peer, conn } = client()
    const connecting = conn.connect()
    await negotiate(peer, `<enabled xmlns='${NS_SM}' ${attrs}/>`)
    await connecting
    expect(conn.plugins.sm.enabled).toBe(true)
    expect(conn.plugins.sm.resumable).toBe(resumable)
  })

  test('<failed/> to enable: online without stream management, the reason kept', async () => {
    const { peer, conn } = client()
    const connecting = conn.connect()
    await negotiate(
      peer,
      `<failed xmlns='${NS_SM}'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>`,
    )
    await connecting
    expect(conn.plugins.sm.enabled).toBe(false)
    expect(conn.plugins.sm.enableError).toMatchObject({
      code: 'enable-failed',
      condition: 'unexpected-request',
    })
    // Without SM, send() resolves once written.
    await conn.send(msg('plain'))
  })

  test('no answer to <enable/> within enableTimeout: connect() fails with a timeout', async () => {
    const { peer, conn } = client({ enableTimeout: 30 })
    const connecting = conn.connect()
    await negotiate(peer, '')
    await expect(connecting).rejects.toMatchObject({ code: 'timeout' })
    expect(conn.resumable).toBe(false)
  })

  test('not offered: no <enable/>', async () => {
    const { peer, conn } = client()
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open({ features: "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>" })
    const iq = await peer.nextElement()
    peer.send(
      `<iq type='result' id='${iq.attrs.id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>juliet@example.com/r</jid></bind></iq>`,
    )
    await connecting
    await conn.send(msg('x'))
    const next = await peer.nextElement()
    expect(next.name).toBe('message')
    expect(conn.plugins.sm.enabled).toBe(false)
  })

  test('unsolicited <enabled/> and <resumed/> while online are not trusted', async () => {
    const { peer, conn } = await online()
    peer.send(`<enabled xmlns='${NS_SM}' id='evil' resume='true'/>`)
    peer.send(`<resumed xmlns='${NS_SM}' previd='sess-1' h='0'/>`)
    await tick()
    expect(conn.plugins.sm.id).toBe('sess-1')
    expect(conn.state).toBe('online')
  })
})

describe('acks (XEP-0198 §4)', () => {
  test('answers <r/> with the count of handled stanzas, whoever handled them', async () => {
    const { peer, conn } = await online()
    for (let i = 0; i < 3; i++) peer.send(`<message from='romeo@example.com/x' id='in${i}'/>`)
    peer.send(`<iq type='result' id='nobody-asked' from='example.com'/>`)
    peer.send(`<r xmlns='${NS_SM}'/>`)
    const [a] = await take(peer, 1)
    expect(a?.name).toBe('a')
    expect(a?.attrs.h).toBe('4')
    expect(conn.plugins.sm.inbound).toBe(4)
  })

  test('an iq result taken by its caller counts; an async handler counts once it finished', async () => {
    const { peer, conn } = await online({}, 'sess-1', [iq, router])
    const api = conn.plugins as unknown as {
      iq: import('@core/iq').IqApi
      router: import('@core/router').RouterApi
    }
    const asking = api.iq.request(xml('iq', { type: 'get', to: 'example.com', id: 'q1' }))
    const request = await peer.nextElement()
    peer.send(`<iq type='result' id='${request.attrs.id}' from='example.com'/>`)
    await asking
    let release!: () => void
    api.router.message(
      () =>
        new Promise<void>((resolve) => {
          release = resolve
        }),
    )
    peer.send(`<message from='romeo@example.com/x' id='slow'/>`)
    await tick()
    peer.send(`<r xmlns='${NS_SM}'/>`)
    await tick()
    // The <r/> waits behind the message still in its handler: h is not reported early.
    expect(conn.plugins.sm.inbound).toBe(1)
    release()
    const [a] = await take(peer, 1)
    expect(a?.attrs.h).toBe('2')
  })

  test('send() settles on the ack, not on the write; <a/> acks in order', async () => {
    const { peer, conn } = await online()
    const settled: string[] = []
    const sends = ['m1', 'm2', 'm3'].map((id) =>
      conn.send(msg(id)).then(() => {
        settled.push(id)
      }),
    )
    await take(peer, 3)
    await tick()
    expect(settled).toEqual([])
    expect(conn.plugins.sm.pending).toBe(3)
    peer.send(`<a xmlns='${NS_SM}' h='2'/>`)
    await tick()
    expect(settled).toEqual(['m1', 'm2'])
    peer.send(`<a xmlns='${NS_SM}' h='3'/>`)
    await Promise.all(sends)
    expect(settled).toEqual(['m1', 'm2', 'm3'])
    expect(conn.plugins.sm.pending).toBe(0)
    expect(conn.plugins.sm.outbound).toBe(3)
  })

  test('requestAck() sends <r/> and resolves with the next h', async () => {
    const { peer, conn } = await online()
    void conn.send(msg('a'))
    await take(peer, 1)
    const acked = conn.plugins.sm.requestAck()
    const [r] = await take(peer, 1)
    expect(r?.name).toBe('r')
    peer.send(`<a xmlns='${NS_SM}' h='1'/>`)
    expect(await acked).toBe(1)
  })

  test('probe() rejects with the signal reason when aborted', async () => {
    const { conn } = await online()
    const controller = new AbortController()
    const probing = conn.plugins.sm.probe(controller.signal)
    controller.abort(new Error('too slow'))
    await expect(probing).rejects.toThrow('too slow')
  })

  test('auto request after N stanzas', async () => {
    const { peer, conn } = await online({ requestEvery: 3 })
    for (let i = 0; i < 3; i++) void conn.send(msg(`n${i}`))
    const out = await take(peer, 4)
    expect(out.map((e) => e.name)).toEqual(['message', 'message', 'message', 'r'])
  })

  test('while an <r/> is unanswered, N more stanzas wait for its <a/>, which asks again at once', async () => {
    const { peer, conn } = await online({ requestEvery: 2, settle: 'written' })
    for (let i = 0; i < 6; i++) void conn.send(msg(`w${i}`))
    await tick()
    // One request in flight: the 4 stanzas after it do not add two more.
    const out = await take(peer, 7)
    expect(out.map((e) => e.name)).toEqual([...'mmrmmmm'].map((c) => (c === 'r' ? 'r' : 'message')))
    await tick()
    expect(peer.queued).toEqual([])
    peer.send(`<a xmlns='${NS_SM}' h='2'/>`)
    const [again] = await take(peer, 1)
    expect(again?.name).toBe('r')
    peer.send(`<a xmlns='${NS_SM}' h='6'/>`)
    await tick()
    expect(conn.plugins.sm.pending).toBe(0)
    expect(peer.queued).toEqual([])
  })

  test('several <r/> in flight (asked by the app): each <a/> answers one, no extra request', async () => {
    const { peer, conn } = await online({ requestEvery: 1000, settle: 'written' })
    await conn.send(msg('x1'))
    const first = conn.plugins.sm.requestAck()
    await conn.send(msg('x2'))
    const room = conn.plugins.sm.whenBelow(1)
    const out = await take(peer, 4)
    expect(out.map((e) => e.name)).toEqual(['message', 'r', 'message', 'r'])
    peer.send(`<a xmlns='${NS_SM}' h='1'/>`)
    expect(await first).toBe(1)
    await tick()
    // The second <r/> covers x2: the waiter does not ask again.
    expect(peer.queued).toEqual([])
    peer.send(`<a xmlns='${NS_SM}' h='2'/>`)
    await room
  })

  test('one <a/> answering two <r/> (against §4) does not stop requests after N stanzas', async () => {
    const { peer, conn } = await online({ requestEvery: 2, settle: 'written' })
    await conn.send(msg('p1'))
    void conn.plugins.sm.requestAck()
    await conn.send(msg('p2'))
    // The app's <r/> after p1, then the policy's after p2's round: two in flight.
    void conn.plugins.sm.requestAck()
    expect((await take(peer, 4)).map((e) => e.name)).toEqual(['message', 'r', 'message', 'r'])
    peer.send(`<a xmlns='${NS_SM}' h='2'/>`) // answers both
    await tick()
    expect(conn.plugins.sm.pending).toBe(0)
    for (const id of ['p3', 'p4']) void conn.send(msg(id))
    const out = await take(peer, 3)
    expect(out.map((e) => e.name)).toEqual(['message', 'message', 'r'])
  })

  test('while an <r/> is unanswered, requestAfter still asks again T ms after later writes', async () => {
    const { peer, conn } = await online({ requestEvery: 2, requestAfter: 20, settle: 'written' })
    for (const id of ['u1', 'u2', 'u3']) void conn.send(msg(id))
    const out = await take(peer, 4)
    expect(out.map((e) => e.name)).toEqual(['message', 'message', 'r', 'message'])
    // No <a/>: u3 was written after the request; the timer asks for it.
    const [again] = await take(peer, 1)
    expect(again?.name).toBe('r')
  })

  test('auto request T ms after a write', async () => {
    const { peer, conn } = await online({ requestAfter: 20, requestEvery: 100 })
    void conn.send(msg('t'))
    const out = await take(peer, 2)
    expect(out.map((e) => e.name)).toEqual(['message', 'r'])
  })

  test('a clean disconnect() requests an ack and sends ours before </stream:stream>', async () => {
    const { peer, conn } = await online()
    peer.answerClose = false
    peer.send(`<message from='romeo@example.com/x' id='in'/>`)
    const sending = conn.send(msg('last'))
    await take(peer, 1)
    const closing = conn.disconnect()
    const [r, a] = await take(peer, 2)
    expect(r?.name).toBe('r')
    expect(a?.attrs).toMatchObject({ xmlns: NS_SM, h: '1' })
    await peer.waitForEnd()
    // As a server does: the answer to <r/>, then its close.
    peer.send(`<a xmlns='${NS_SM}' h='1'/>`)
    peer.sendRaw(peer.closeMarker)
    await closing
    await sending
    expect(conn.plugins.sm.enabled).toBe(false)
  })

  test('a clean disconnect() with stanzas unacknowledged reports them not delivered', async () => {
    const { peer, conn } = await online()
    const sending = conn.send(msg('lost'))
    const failed: string[] = []
    conn.hooks.on('sm-failed', ({ element }) => {
      failed.push(String(element.attrs.id))
    })
    await take(peer, 1)
    await conn.disconnect()
    await expect(sending).rejects.toMatchObject({ code: 'not-delivered' })
    expect(failed).toEqual(['lost'])
    expect(conn.resumable).toBe(false)
  })

  test('the queue is bounded: past queueLimit send() rejects queue-full and the hook fires', async () => {
    const { peer, conn } = await online({ queueLimit: 2, requestEvery: 100 })
    const full: number[] = []
    conn.hooks.on('sm-queue-full', ({ limit }) => {
      full.push(limit)
    })
    const a = conn.send(msg('1'))
    const b = conn.send(msg('2'))
    await expect(conn.send(msg('3'))).rejects.toMatchObject({ code: 'queue-full' })
    expect(full).toEqual([2])
    await take(peer, 2)
    peer.send(`<a xmlns='${NS_SM}' h='2'/>`)
    await Promise.all([a, b])
    const c = conn.send(msg('3'))
    await take(peer, 1)
    peer.send(`<a xmlns='${NS_SM}' h='3'/>`)
    await c
  })

  test('the queue is bounded in bytes too: past queueBytes of held XML send() rejects queue-full', async () => {
    const { peer, conn } = await online({ queueBytes: 250, requestEvery: 100, settle: 'written' })
    const full: { pending: number; bytes: number; byteLimit: number }[] = []
    conn.hooks.on('sm-queue-full', ({ pending, bytes, byteLimit }) => {
      full.push({ pending, bytes, byteLimit })
    })
    const big = (id: string) =>
      xml('message', { to: 'romeo@example.com', id }, xml('body', {}, 'x'.repeat(100)))
    await conn.send(big('1'))
    await conn.send(big('2'))
    // Two stanzas of about 150 characters each are held: past 250, the third is refused.
    await expect(conn.send(big('3'))).rejects.toMatchObject({ code: 'queue-full' })
    expect(full).toHaveLength(1)
    expect(full[0]?.pending).toBe(2)
    expect(full[0]?.bytes).toBeGreaterThanOrEqual(250)
    expect(full[0]?.byteLimit).toBe(250)
    expect(conn.plugins.sm.pending).toBe(2)
    // What the server got: the two accepted, never the refused one.
    const received = await take(peer, 2)
    expect(received.map((el) => el.attrs.id)).toEqual(['1', '2'])
    // Acks free the room, and the held bytes with it.
    peer.send(`<a xmlns='${NS_SM}' h='2'/>`)
    await conn.plugins.sm.allAcked()
    await conn.send(big('3'))
    expect((await take(peer, 1)).map((el) => el.attrs.id)).toEqual(['3'])
    await conn.disconnect()
  })

  test('stanzas held for a resumption count against queueBytes too', async () => {
    const { peer, conn } = await droppedAfterOneWith({ queueBytes: 300 })
    const big = xml(
      'message',
      { to: 'romeo@example.com', id: 'h' },
      xml('body', {}, 'y'.repeat(200)),
    )
    const held = conn.send(big)
    await expect(conn.send(msg('refused'))).rejects.toMatchObject({ code: 'queue-full' })
    await resumeWithNothingAcked(peer, conn)
    await held
    const ids = (await take(peer, 2)).map((el) => el.attrs.id)
    expect(ids).toEqual(['before', 'h'])
    await conn.disconnect()
  })
})

describe('strict h (xs:unsignedInt)', () => {
  test.each([
    '',
    ' ',
    '-1',
    '-0',
    '1.0',
    '1e3',
    '0x10',
    'abc',
    '4294967296',
    '99999999999',
    '1 2',
    '١',
    '+',
  ])('<a h=%j/> ends the stream with undefined-condition and drops the session', async (h) => {
    const { peer, conn } = await online()
    const sending = conn.send(msg('m'))
    await take(peer, 1)
    peer.send(`<a xmlns='${NS_SM}' h='${h}'/>`)
    await expect(sending).rejects.toMatchObject({ code: 'not-delivered' })
    await peer.waitForEnd()
    expect(peer.written.join('')).toContain('<undefined-condition')
    await tick(5)
    expect(conn.resumable).toBe(false)
    expect(conn.plugins.sm.enabled).toBe(false)
  })

  test('<a/> without h is malformed too', async () => {
    const { peer, conn } = await online()
    peer.send(`<a xmlns='${NS_SM}'/>`)
    await peer.waitForEnd()
    expect(conn.plugins.sm.enabled).toBe(false)
  })

  test.each([
    ['+1', 1],
    ['01', 1],
    [' 1 ', 1],
    ['\n1\t', 1],
    ['0000000000001', 1],
  ])('h=%j is read as %d', async (h, n) => {
    const { peer, conn } = await online()
    const sending = conn.send(msg('m'))
    await take(peer, 1)
    peer.send(`<a xmlns='${NS_SM}' h='${h}'/>`)
    await sending
    expect(conn.plugins.sm.outbound).toBe(n)
  })

  test('an ack above what was sent: handled-count-too-high, not resumable', async () => {
    const { peer, conn } = await online()
    const sending = conn.send(msg('m'))
    await take(peer, 1)
    peer.send(`<a xmlns='${NS_SM}' h='5'/>`)
    await expect(sending).rejects.toMatchObject({ code: 'not-delivered' })
    await peer.waitForEnd()
    const all = peer.written.join('')
    expect(all).toMatch(/<undefined-condition[^>]*\/><handled-count-too-high/)
    expect(all).toMatch(/h=["']5["']/)
    expect(all).toMatch(/send-count=["']1["']/)
    await tick(5)
    expect(conn.resumable).toBe(false)
  })
})

describe('the 32-bit wrap', () => {
  test('counters starting near 2^32 wrap to 0 and acks compare modulo 2^32', async () => {
    const start = 2 ** 32 - 2
    const { peer, conn } = await online({ counterStart: start, requestEvery: 100 })
    const sends = ['w1', 'w2', 'w3', 'w4'].map((id) => conn.send(msg(id)))
    await take(peer, 4)
    expect(conn.plugins.sm.outbound).toBe(2)
    peer.send(`<a xmlns='${NS_SM}' h='4294967295'/>`)
    await sends[0]
    expect(conn.plugins.sm.pending).toBe(3)
    peer.send(`<a xmlns='${NS_SM}' h='2'/>`)
    await Promise.all(sends)
    // Inbound: two stanzas from 2^32 - 2 wrap to 0.
    peer.send(`<message from='romeo@example.com/x'/><message from='romeo@example.com/x'/>`)
    peer.send(`<r xmlns='${NS_SM}'/>`)
    const [a] = await take(peer, 1)
    expect(a?.attrs.h).toBe('0')
    // Too high across the wrap is still too high.
    void conn.send(msg('w5')).then(undefined, () => undefined)
    await take(peer, 1)
    peer.send(`<a xmlns='${NS_SM}' h='4'/>`)
    await peer.waitForEnd()
    expect(peer.written.join('')).toContain('handled-count-too-high')
  })
})

describe('resumption (XEP-0198 §5)', () => {
  async function dropped(options: Partial<SmOptions> = {}) {
    const ctx = await online(options)
    const { peer, conn } = ctx
    peer.send(`<message from='romeo@example.com/x' id='in1'/>`)
    const sent = [conn.send(msg('s1')), conn.send(msg('s2'))]
    await take(peer, 2)
    peer.send(`<a xmlns='${NS_SM}' h='1'/>`)
    await sent[0]
    peer.close(new Error('ECONNRESET'))
    await tick()
    return { ...ctx, sent }
  }

  test('a drop leaves it resumable; send() meanwhile is held; resume resends in order and keeps counters', async () => {
    const { peer, conn, sent } = await dropped()
    expect(conn.state).toBe('disconnected')
    expect(conn.resumable).toBe(true)
    const during = conn.send(msg('s3'))
    expect(conn.plugins.sm.pending).toBe(2)
    const online = conn.hooks.next('online')
    const again = conn.connect()
    await peer.nextHeader()
    peer.open({ features: FEATURES })
    const resume = await peer.nextElement()
    expect(resume.attrs).toEqual({ xmlns: NS_SM, previd: 'sess-1', h: '1' })
    peer.send(`<resumed xmlns='${NS_SM}' previd='sess-1' h='1'/>`)
    await again
    expect(await online).toEqual({ resumed: true })
    const resent = await take(peer, 2)
    expect(resent.map((e) => e.attrs.id)).toEqual(['s2', 's3'])
    peer.send(`<a xmlns='${NS_SM}' h='3'/>`)
    await Promise.all([sent[1], during])
    expect(conn.plugins.sm.resent).toBe(2)
    expect(conn.jid?.toString()).toBe('juliet@example.com/r')
  })

  test('<resumed h/> acknowledges what the server got before the drop', async () => {
    const { peer, conn, sent } = await dropped()
    const again = conn.connect()
    await peer.nextHeader()
    peer.open({ features: FEATURES })
    await peer.nextElement()
    peer.send(`<resumed xmlns='${NS_SM}' previd='sess-1' h='2'/>`)
    await again
    await sent[1]
    expect(conn.plugins.sm.pending).toBe(0)
  })

  test('<failed/> (item-not-found): its h applies, then a fresh bind and enable; the rest is reported failed', async () => {
    const { peer, conn, sent } = await dropped()
    const during = conn.send(msg('s3'))
    const failed: string[] = []
    conn.hooks.on('sm-failed', ({ element }) => {
      failed.push(String(element.attrs.id))
    })
    const online = conn.hooks.next('online')
    const again = conn.connect()
    await peer.nextHeader()
    peer.open({ features: FEATURES })
    await peer.nextElement()
    peer.send(
      `<failed xmlns='${NS_SM}' h='1'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>`,
    )
    await expect(sent[1]).rejects.toMatchObject({ code: 'not-delivered' })
    await expect(during).rejects.toMatchObject({ code: 'not-delivered' })
    expect(failed).toEqual(['s2', 's3'])
    await negotiateAfterFailed(peer, `<enabled xmlns='${NS_SM}' id='sess-2' resume='true'/>`)
    await again
    expect(await online).toEqual({ resumed: false })
    expect(conn.plugins.sm.id).toBe('sess-2')
    expect(conn.signal.aborted).toBe(false)
  })

  test("<failed h/> with onResumeFailed 'resend': messages go out again with a delay and no from", async () => {
    const { peer, conn, sent } = await dropped({ onResumeFailed: 'resend' })
    const again = conn.connect()
    await peer.nextHeader()
    peer.open({ features: FEATURES })
    await peer.nextElement()
    peer.send(`<failed xmlns='${NS_SM}'/>`)
    await negotiateAfterFailed(peer, `<enabled xmlns='${NS_SM}' id='sess-2' resume='true'/>`)
    await again
    const [resent] = await take(peer, 1)
    expect(resent?.attrs.id).toBe('s2')
    expect(resent?.attrs.from).toBeUndefined()
    expect(resent?.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp).toMatch(/^\d{4}-/)
    peer.send(`<a xmlns='${NS_SM}' h='1'/>`)
    await sent[1]
  })

  test('<resumed/> for another previd is not trusted: the session is given up', async () => {
    const { peer, conn, sent } = await dropped()
    const again = conn.connect()
    await peer.nextHeader()
    peer.open({ features: FEATURES })
    await peer.nextElement()
    peer.send(`<resumed xmlns='${NS_SM}' previd='someone-else' h='2'/>`)
    await expect(again).rejects.toMatchObject({ code: 'protocol' })
    await expect(sent[1]).rejects.toMatchObject({ code: 'not-delivered' })
    expect(conn.resumable).toBe(false)
  })

  test('a malformed h in <resumed/> fails the stream and the session', async () => {
    const { peer, conn, sent } = await dropped()
    const again = conn.connect()
    await peer.nextHeader()
    peer.open({ features: FEATURES })
    await peer.nextElement()
    peer.send(`<resumed xmlns='${NS_SM}' previd='sess-1' h='-1'/>`)
    await expect(again).rejects.toBeDefined()
    await expect(sent[1]).rejects.toMatchObject({ code: 'not-delivered' })
    expect(conn.resumable).toBe(false)
  })

  test('disconnect() while detached ends the session: held stanzas fail, send() rejects not-connected', async () => {
    const { conn, sent } = await dropped()
    await conn.disconnect()
    await expect(sent[1]).rejects.toMatchObject({ code: 'not-delivered' })
    await expect(conn.send(msg('after'))).rejects.toMatchObject({ code: 'not-connected' })
  })

  test('the server max bounds the resumption window: after it, the session expires', async () => {
    const { peer, conn } = client()
    const connecting = conn.connect()
    await negotiate(peer, `<enabled xmlns='${NS_SM}' id='e' resume='true' max='0'/>`)
    await connecting
    const sending = conn.send(msg('x'))
    await take(peer, 1)
    const ended = conn.hooks.next('session-end')
    peer.close(new Error('ECONNRESET'))
    expect((await ended).error).toMatchObject({ code: 'session-expired' })
    await expect(sending).rejects.toMatchObject({ code: 'not-delivered' })
  })

  test('location from <enabled/> is where the next attempt goes', async () => {
    const { peer, conn } = client()
    const connecting = conn.connect()
    await negotiate(
      peer,
      `<enabled xmlns='${NS_SM}' id='l' resume='true' location='[2001:db8::1]:5223'/>`,
    )
    await connecting
    peer.close(new Error('ECONNRESET'))
    await tick()
    const again = conn.connect()
    await peer.nextHeader()
    expect(peer.targets.at(-1)).toMatchObject({ host: '2001:db8::1', port: 5223 })
    peer.open({ features: FEATURES })
    await peer.nextElement()
    peer.send(`<resumed xmlns='${NS_SM}' previd='l' h='0'/>`)
    await again
  })
})

/** After <failed/>: bind again, then enable. */
async function negotiateAfterFailed(peer: MemoryPeer, enabled: string) {
  const iq = await peer.nextElement()
  expect(iq.getChild('bind')).toBeDefined()
  peer.send(
    `<iq type='result' id='${iq.attrs.id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>juliet@example.com/r2</jid></bind></iq>`,
  )
  const enable = await peer.nextElement()
  expect(enable.name).toBe('enable')
  peer.send(enabled)
}

test('after a resumption that resent a multiple of requestEvery, an ack is still requested', async () => {
  const { peer, conn } = await online({ requestEvery: 2 })
  const sent = [conn.send(msg('a')), conn.send(msg('b'))]
  await take(peer, 2)
  peer.close(new Error('ECONNRESET'))
  await tick()
  const again = conn.connect()
  await peer.nextHeader()
  peer.open({ features: FEATURES })
  await peer.nextElement()
  peer.send(`<resumed xmlns='${NS_SM}' previd='sess-1' h='0'/>`)
  await again
  const out = await take(peer, 3)
  expect(out.map((e) => e.name)).toEqual(['message', 'message', 'r'])
  peer.send(`<a xmlns='${NS_SM}' h='2'/>`)
  await Promise.all(sent)
})

describe("send() with the default settle: 'written'", () => {
  const written = () => online({ settle: 'written' })

  test('send() resolves once written, before any ack; the stanza stays held until acknowledged', async () => {
    const { peer, conn } = await written()
    await conn.send(msg('w1'))
    const [out] = await take(peer, 1)
    expect(out?.attrs.id).toBe('w1')
    // Resolved, and still held for a resend: nothing was acknowledged yet.
    expect(conn.plugins.sm.pending).toBe(1)
    let allAcked = false
    const waiting = conn.plugins.sm.allAcked().then(() => {
      allAcked = true
    })
    await tick()
    expect(allAcked).toBe(false)
    peer.send(`<a xmlns='${NS_SM}' h='1'/>`)
    await waiting
    expect(conn.plugins.sm.pending).toBe(0)
  })

  test('a stanza lost with its session: reported through sm-failed, and no unhandled rejection for a send() nobody awaited', async () => {
    const { peer, conn } = await written()
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      const failed: string[] = []
      conn.hooks.on('sm-failed', ({ element }) => {
        failed.push(String(element.attrs.id))
      })
      void conn.send(msg('fire-and-forget'))
      await take(peer, 1)
      await conn.disconnect()
      await tick(20)
      expect(failed).toEqual(['fire-and-forget'])
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })

  test('a send() while detached resolves once written after the resumption, not before', async () => {
    const { peer, conn } = await droppedAfterOne()
    expect(conn.resumable).toBe(true)
    let settled = false
    const during = conn.send(msg('during')).then(() => {
      settled = true
    })
    await tick()
    expect(settled).toBe(false)
    await resumeWithNothingAcked(peer, conn)
    const resent = await take(peer, 2)
    expect(resent.map((e) => e.attrs.id)).toEqual(['before', 'during'])
    await during
    expect(settled).toBe(true)
  })
})

test('a send() between <resumed/> and online is held, then written once online, after the resent ones', async () => {
  const { peer, conn } = await droppedAfterOne()
  let inWindow: Promise<void> | undefined
  conn.hooks.on('sm-resumed', () => {
    // Stream management is back on, the connection not online yet.
    expect(conn.state).not.toBe('online')
    inWindow = conn.send(msg('in-window'))
  })
  await resumeWithNothingAcked(peer, conn)
  const out = await take(peer, 2)
  expect(out.map((e) => e.attrs.id)).toEqual(['before', 'in-window'])
  await inWindow
  expect(conn.plugins.sm.pending).toBe(2)
})

describe('whenBelow(n): room in the queue for a sender that streams', () => {
  const written = (options: Partial<SmOptions> = {}) => online({ settle: 'written', ...options })

  test('resolves at once below n; at n, asks with <r/> and resolves only once acks bring the queue under n', async () => {
    const { peer, conn } = await written()
    await conn.plugins.sm.whenBelow(1)
    for (const id of ['b1', 'b2', 'b3']) await conn.send(msg(id))
    await take(peer, 3)
    await conn.plugins.sm.whenBelow(4)
    let resolved = false
    const waiting = conn.plugins.sm.whenBelow(2).then(() => {
      resolved = true
    })
    const [request] = await take(peer, 1)
    expect(request?.name).toBe('r')
    peer.send(`<a xmlns='${NS_SM}' h='1'/>`) // 2 left: not below 2
    await tick()
    expect(resolved).toBe(false)
    expect(conn.plugins.sm.pending).toBe(2)
    peer.send(`<a xmlns='${NS_SM}' h='2'/>`)
    await waiting
    expect(conn.plugins.sm.pending).toBe(1)
  })

  test('rejects n that is not a positive integer (it could never be true)', async () => {
    const { conn } = await written()
    for (const n of [0, -1, Number.NaN, 1.5]) {
      await expect(conn.plugins.sm.whenBelow(n)).rejects.toThrow(TypeError)
    }
  })

  test('sends no second <r/> while one is unanswered and nothing was written since', async () => {
    const { peer, conn } = await written({ requestEvery: 2 })
    await conn.send(msg('c1'))
    await conn.send(msg('c2'))
    const out = await take(peer, 3)
    expect(out.map((e) => e.name)).toEqual(['message', 'message', 'r'])
    const waiting = conn.plugins.sm.whenBelow(1)
    await tick()
    await conn.send(msg('c3'))
    // The next element the server sees is c3: whenBelow() relied on the <r/> in flight.
    const [next] = await take(peer, 1)
    expect(next?.attrs.id).toBe('c3')
    peer.send(`<a xmlns='${NS_SM}' h='2'/>`)
    await tick()
    expect(conn.plugins.sm.pending).toBe(1)
    // c3 is still unacknowledged: the waiter waits on, now asking again.
    const [again] = await take(peer, 1)
    expect(again?.name).toBe('r')
    peer.send(`<a xmlns='${NS_SM}' h='3'/>`)
    await waiting
  })

  test('waits across a drop: resolves once the resumed session acknowledges what was resent', async () => {
    const { peer, conn } = await droppedAfterOne()
    let resolved = false
    const waiting = conn.plugins.sm.whenBelow(1).then(() => {
      resolved = true
    })
    await resumeWithNothingAcked(peer, conn)
    const out = await take(peer, 2)
    expect(out.map((e) => e.name)).toEqual(['message', 'r'])
    expect(resolved).toBe(false)
    peer.send(`<a xmlns='${NS_SM}' h='1'/>`)
    await waiting
    expect(conn.plugins.sm.pending).toBe(0)
  })

  test('rejects when the session ends first, or with the reason when the signal aborts', async () => {
    const { peer, conn } = await written()
    await conn.send(msg('d1'))
    await take(peer, 1)
    const controller = new AbortController()
    const aborted = conn.plugins.sm.whenBelow(1, controller.signal)
    controller.abort(new Error('enough'))
    await expect(aborted).rejects.toThrow('enough')
    const ended = conn.plugins.sm.whenBelow(1)
    await conn.disconnect()
    await expect(ended).rejects.toMatchObject({ code: 'not-delivered' })
  })
})
