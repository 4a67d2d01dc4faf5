import { Element } from '@core/xml'
import { describe, expect, test } from 'vitest'
import { ConnectionError, StreamError } from '@core/errors'
import {
  type ConnectTarget,
  createConnection,
  definePlugin,
  FeaturePriority,
  type HookMap,
  type StreamFeature,
  type TransportEvents,
} from '../src/index.js'
import { xml } from '@core/xml'
import {
  MESSAGE_FRAMED,
  SHORT,
  featurePlugin,
  newPeer,
  online,
  record,
  tick,
  withPeer,
  withoutXmlns,
} from './helpers.js'

describe('stream opening and closing', () => {
  test('sends a client stream header and goes online through the states', async () => {
    const peer = newPeer()
    const conn = createConnection({
      transport: peer.transport,
      domain: 'example.com',
      lang: 'en',
      timeouts: SHORT,
    })
    const states = record<HookMap['state']>((fn) => conn.hooks.on('state', fn))
    const onlines = record<HookMap['online']>((fn) => conn.hooks.on('online', fn))
    const connecting = conn.connect()
    const header = await peer.nextHeader()
    expect(header).toMatchObject({ to: 'example.com', version: '1.0', 'xml:lang': 'en' })
    if (MESSAGE_FRAMED) {
      // RFC 7395 §3.3.2: <open/> in the framing namespace, no streams prefix.
      expect(peer.written[0]).toBe(
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0' xml:lang='en'/>",
      )
    } else {
      expect(header).toMatchObject({
        xmlns: 'jabber:client',
        'xmlns:stream': 'http://etherx.jabber.org/streams',
      })
    }
    peer.open({ features: '' })
    await connecting
    expect(conn.state).toBe('online')
    expect(states.map((s) => s.state)).toEqual(['connecting', 'negotiating', 'online'])
    expect(onlines).toEqual([{ resumed: false }])
  })

  test('disconnect() closes the stream and waits for the peer', async () => {
    const { peer, conn } = await online()
    const disconnected = record<HookMap['disconnected']>((fn) => conn.hooks.on('disconnected', fn))
    peer.answerClose = false
    const closing = conn.disconnect()
    await peer.waitForEnd()
    expect(peer.written.at(-1)).toBe(peer.closeMarker)
    expect(conn.state).toBe('disconnecting')
    peer.send('</stream:stream>')
    await closing
    expect(conn.state).toBe('disconnected')
    expect(disconnected).toEqual([
      { error: undefined, clean: true, reason: 'stopped', resumable: false },
    ])
    expect(peer.connected).toBe(false)
  })

  test('disconnect() does not hang when the peer never answers', async () => {
    const { peer, conn } = await online()
    peer.answerClose = false
    const started = Date.now()
    await conn.disconnect()
    expect(Date.now() - started).toBeLessThan(1000)
    expect(peer.connected).toBe(false)
  })

  test('the peer closing its stream is answered and reported', async () => {
    const { peer, conn } = await online()
    const disconnected = conn.hooks.next('disconnected')
    peer.send('</stream:stream>')
    const { error, clean } = await disconnected
    expect(clean).toBe(false)
    expect(error).toBeInstanceOf(ConnectionError)
    expect(peer.written.at(-1)).toBe(peer.closeMarker)
  })

  test('a dropped transport is reported as disconnected with an error, then session-end', async () => {
    const { peer, conn } = await online()
    const events: string[] = []
    conn.hooks.on('disconnected', ({ error }) => {
      events.push(`disconnected:${error?.code}`)
    })
    conn.hooks.on('session-end', () => {
      events.push('session-end')
    })
    peer.close(new Error('ECONNRESET'))
    await tick()
    expect(events).toEqual(['disconnected:disconnected', 'session-end'])
    expect(conn.state).toBe('disconnected')
  })

  test('a connect timeout ends in a TimeoutError', async () => {
    const peer = newPeer()
    peer.hang = true
    const conn = createConnection({
      transport: peer.transport,
      domain: 'example.com',
      timeouts: { ...SHORT, connect: 50 },
    })
    await expect(conn.connect()).rejects.toMatchObject({ code: 'timeout' })
    expect(conn.state).toBe('disconnected')
  })

  test('a peer that never sends its header ends in a TimeoutError and a closed transport', async () => {
    const peer = newPeer()
    const conn = createConnection({
      transport: peer.transport,
      domain: 'example.com',
      timeouts: { ...SHORT, negotiation: 50 },
    })
    await expect(conn.connect()).rejects.toMatchObject({ code: 'timeout' })
    expect(peer.connected).toBe(false)
  })

  test('connect() can be called again after a disconnection, with the same plugins', async () => {
    let setups = 0
    const counter = definePlugin({
      name: 'counter',
      setup() {
        setups++
        return { value: 1 }
      },
    })
    const { peer, conn } = await online([counter])
    peer.close()
    await tick()
    const again = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '' })
    await again
    expect(conn.state).toBe('online')
    expect(setups).toBe(1)
    expect(conn.plugins.counter.value).toBe(1)
  })
})

describe('stream errors', () => {
  test('a stream error from the peer is typed, answered and closes the connection', async () => {
    const { peer, conn } = await online()
    const disconnected = conn.hooks.next('disconnected')
    peer.send(
      "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced</text></stream:error>",
    )
    const { error } = await disconnected
    expect(error).toBeInstanceOf(StreamError)
    expect(error).toMatchObject({
      condition: 'conflict',
      remote: true,
      text: 'Replaced',
      code: 'stream-error',
    })
    expect(peer.written.at(-1)).toBe(peer.closeMarker)
    expect(peer.connected).toBe(false)
  })

  test('see-other-host reconnects to the new host, keeping the domain', async () => {
    const { peer, conn } = withPeer()
    const redirects = record<HookMap['redirect']>((fn) => conn.hooks.on('redirect', fn))
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open()
    peer.send(
      "<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>[2001:db8::1]:5223</see-other-host></stream:error>",
    )
    await peer.nextHeader()
    peer.open({ features: '' })
    await connecting
    expect(peer.targets.map((t) => [t.domain, t.host, t.port])).toEqual([
      ['example.com', undefined, undefined],
      ['example.com', '2001:db8::1', 5223],
    ])
    expect(redirects).toEqual([{ host: '2001:db8::1', port: 5223, count: 1 }])
  })

  test('redirects are capped', async () => {
    const { peer, conn } = withPeer({
      maxRedirects: 2,
    })
    const connecting = conn.connect()
    const outcome = connecting.then(
      () => undefined,
      (error: unknown) => error,
    )
    for (let i = 0; i < 3; i++) {
      await peer.nextHeader()
      peer.open()
      peer.send(
        "<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>other.example</see-other-host></stream:error>",
      )
    }
    const error = await outcome
    expect(error).toBeInstanceOf(ConnectionError)
    expect(error).toMatchObject({ code: 'redirect-limit' })
    expect(peer.targets).toHaveLength(3)
  })
})

describe('stream features', () => {
  const log: string[] = []
  const feature = (
    name: string,
    priority: number,
    result: 'restart' | 'continue' | 'done',
  ): StreamFeature => ({
    name,
    priority,
    applies: (features) => features.getChild(name) !== undefined,
    async negotiate(_features, nc) {
      log.push(name)
      if (name === 'starttls') {
        await nc.send(xml('starttls', { xmlns: 'urn:ietf:params:xml:ns:xmpp-tls' }))
        await nc.waitFor((el) => el.name === 'proceed', { last: true })
      }
      return result
    },
  })

  test('run in priority order whatever the registration order, restart and resume counting', async () => {
    log.length = 0
    const plugin = definePlugin({
      name: 'features',
      setup(ctx) {
        ctx.feature(feature('enable', FeaturePriority.SM_ENABLE, 'continue'))
        ctx.feature(feature('bind', FeaturePriority.BIND, 'continue'))
        ctx.feature(feature('starttls', FeaturePriority.STARTTLS, 'restart'))
      },
    })
    const { peer, conn } = withPeer({
      plugins: [plugin],
    })
    const stanzas = record<HookMap['stanza']>((fn) => conn.hooks.on('stanza', fn))
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '<starttls/><bind/><enable/>' })
    expect((await peer.nextElement()).name).toBe('starttls')
    // The NO STARTTLS injection class: bytes after <proceed/> in the same read are dropped.
    peer.send(
      "<proceed/><message from='evil@example.com' to='me@example.com'><body>injected</body></message>",
    )
    peer.restart()
    await peer.nextHeader()
    peer.open({ features: '<bind/><enable/>' })
    await connecting
    expect(log).toEqual(['starttls', 'bind', 'enable'])
    expect(stanzas).toEqual([])
  })

  test('a required feature that no plugin negotiates fails the connection', async () => {
    const { peer, conn } = withPeer()
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open({
      features: "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>",
    })
    await expect(connecting).rejects.toMatchObject({ code: 'negotiation-failed' })
    expect(peer.connected).toBe(false)
  })

  test('a feature that waits for an answer that never comes times out', async () => {
    const plugin = featurePlugin('slow', 'x', async (_f, nc) => {
      await nc.waitFor((el) => el.name === 'never', { timeout: 30 })
      return 'done'
    })
    const { peer, conn } = withPeer({
      plugins: [plugin],
    })
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '<x/>' })
    await expect(connecting).rejects.toMatchObject({ code: 'timeout' })
    expect(peer.connected).toBe(false)
  })

  // Negotiation is one element per round trip: waiting for the end of the tick would only
  // delay the step. Online, sends are batched per tick (see the outbound pipeline tests).
  test('during negotiation, send() writes to the transport at once', async () => {
    const seenAtSend: string[] = []
    const plugin = featurePlugin('step', 'step', async (_f, nc) => {
      const sent = nc.send(xml('step', { n: '1' }))
      seenAtSend.push(peer.written.at(-1) ?? '')
      await sent
      await nc.waitFor((el) => el.name === 'ok')
      return 'done'
    })
    const { peer, conn } = withPeer({
      plugins: [plugin],
    })
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '<step/>' })
    expect(withoutXmlns((await peer.nextElement()).attrs)).toEqual({ n: '1' })
    peer.send('<ok/>')
    await connecting
    expect(seenAtSend).toEqual([
      MESSAGE_FRAMED ? '<step xmlns="jabber:client" n="1"/>' : '<step n="1"/>',
    ])
  })
})

describe('outbound pipeline', () => {
  test('a middleware can change, replace or drop elements; after next() it sees what was written', async () => {
    const written: (string | undefined)[] = []
    const plugin = definePlugin({
      name: 'rewrite',
      setup(ctx) {
        ctx.outbound(async (c, next) => {
          if (c.element.attrs.drop) return
          if (c.element.name === 'presence') c.element = xml('presence', { type: 'unavailable' })
          c.element.attrs.stamped = 'yes'
          await next()
          written.push(c.data)
        })
      },
    })
    const { peer, conn } = await online([plugin])
    await conn.send(xml('message', { to: 'a@example.com', drop: '1' }))
    await conn.send(xml('message', { to: 'b@example.com' }))
    await conn.send(xml('presence'))
    const first = await peer.nextElement()
    const second = await peer.nextElement()
    expect(first.attrs).toMatchObject({ to: 'b@example.com', stamped: 'yes' })
    expect(second.attrs).toMatchObject({ type: 'unavailable', stamped: 'yes' })
    expect(peer.queued).toHaveLength(0)
    expect(written).toEqual([first.toString(), second.toString()])
  })

  test('writes in one tick are batched into one transport write', async () => {
    const { peer, conn } = await online()
    const before = peer.written.length
    const sends = [1, 2, 3].map((i) => conn.send(xml('message', { id: `m${i}` })))
    await Promise.all(sends)
    await tick()
    if (MESSAGE_FRAMED) {
      // RFC 7395 §3.3.3: one element per message, each declaring its namespace.
      expect(peer.written.slice(before)).toEqual(
        [1, 2, 3].map((i) => `<message xmlns="jabber:client" id="m${i}"/>`),
      )
    } else {
      expect(peer.written.length - before).toBe(1)
      expect(peer.written.at(-1)).toBe('<message id="m1"/><message id="m2"/><message id="m3"/>')
    }
  })

  test('backpressure: nothing more is written until the transport drains', async () => {
    const { peer, conn } = await online()
    peer.block()
    await conn.send(xml('message', { id: 'a' }))
    await tick()
    const count = peer.written.length
    const sent = [conn.send(xml('message', { id: 'b' })), conn.send(xml('message', { id: 'c' }))]
    await tick()
    expect(peer.written.length).toBe(count)
    peer.drain()
    expect(peer.written.slice(count).join('')).toBe(
      MESSAGE_FRAMED
        ? '<message xmlns="jabber:client" id="b"/><message xmlns="jabber:client" id="c"/>'
        : '<message id="b"/><message id="c"/>',
    )
    await Promise.all(sent)
  })

  test('text that looks like markup arrives as text', async () => {
    const { peer, conn } = await online()
    const evil = '</body></message><iq type="set" id="x"><query/></iq>'
    await conn.send(xml('message', { to: 'a@example.com' }, xml('body', null, evil)))
    const received = await peer.nextElement()
    expect(received.getChildText('body')).toBe(evil)
    expect(peer.queued).toHaveLength(0)
  })

  test('send() while disconnected rejects with ConnectionError not-connected', async () => {
    const { peer, conn } = await online()
    peer.close()
    await tick()
    await expect(conn.send(xml('message'))).rejects.toMatchObject({ code: 'not-connected' })
  })
})

describe('inbound pipeline', () => {
  test('elements are tagged stanza or nonza and pass middleware in priority order', async () => {
    const seen: string[] = []
    const a = definePlugin({
      name: 'a',
      setup(ctx) {
        ctx.inbound((c, next) => {
          seen.push(`a:${c.kind}:${c.name}`)
          return next()
        })
      },
    })
    const b = definePlugin({
      name: 'b',
      setup(ctx) {
        ctx.inbound(
          (c, next) => {
            seen.push(`b:${c.kind}:${c.name}`)
            return next()
          },
          { priority: -1 },
        )
      },
    })
    const { peer, conn } = await online([a, b])
    const nonzas = conn.hooks.next('nonza')
    peer.send("<message from='x@example.com'><body>1</body></message><r xmlns='urn:xmpp:sm:3'/>")
    await nonzas
    expect(seen).toEqual(['b:stanza:message', 'a:stanza:message', 'b:nonza:r', 'a:nonza:r'])
  })

  test('elements are handled one at a time, in order, and onHandled fires after async handling', async () => {
    const order: string[] = []
    const slow = definePlugin({
      name: 'slow',
      setup(ctx) {
        ctx.inbound(async (c, next) => {
          if (c.element.attrs.id === '1') await tick(20)
          order.push(`handled ${c.element.attrs.id}`)
          await next()
        })
        ctx.onHandled((c) => {
          order.push(`complete ${c.element.attrs.id}`)
        })
      },
    })
    const { peer, conn } = await online([slow])
    const done = new Promise<void>((resolve) => {
      conn.hooks.on('stanza', ({ element }) => {
        if (element.attrs.id === '3') resolve()
      })
    })
    peer.send("<message id='1'/><message id='2'/><message id='3'/>")
    await done
    await tick()
    expect(order).toEqual([
      'handled 1',
      'complete 1',
      'handled 2',
      'complete 2',
      'handled 3',
      'complete 3',
    ])
  })

  test('a throwing middleware is reported and the connection stays up', async () => {
    const plugin = definePlugin({
      name: 'boom',
      setup(ctx) {
        ctx.inbound(() => {
          throw new Error('handler bug')
        })
      },
    })
    const { peer, conn } = await online([plugin])
    const error = conn.hooks.next('error')
    peer.send("<message id='1'/>")
    expect((await error).error.message).toBe('handler bug')
    expect(conn.state).toBe('online')
  })

  test('stanzas get the stream namespace through their parent', async () => {
    const { peer, conn } = await online()
    const stanza = conn.hooks.next('stanza')
    peer.send("<message id='1'><body>x</body></message>")
    const { element } = await stanza
    expect(element.is('message', 'jabber:client')).toBe(true)
    expect(element.getChild('body')?.getNS()).toBe('jabber:client')
  })
})

describe('iq requests nobody handles (RFC 6120 §8.4)', () => {
  test('an unhandled get/set is answered service-unavailable', async () => {
    const { peer } = await online()
    peer.send(
      "<iq type='get' id='q1' from='juliet@example.com/balcony'><query xmlns='urn:example:unknown'/></iq>",
    )
    const reply = await peer.nextElement()
    expect(reply.attrs).toMatchObject({ type: 'error', id: 'q1', to: 'juliet@example.com/balcony' })
    expect(reply.getChild('error')?.attrs.type).toBe('cancel')
    expect(
      reply
        .getChild('error')
        ?.getChild('service-unavailable', 'urn:ietf:params:xml:ns:xmpp-stanzas'),
    ).toBeDefined()
  })

  test('results and errors are never answered', async () => {
    const { peer, conn } = await online()
    const stanzas = record<HookMap['stanza']>((fn) => conn.hooks.on('stanza', fn))
    peer.send(
      "<iq type='result' id='r1' from='example.com'/><iq type='error' id='r2' from='example.com'><error type='cancel'/></iq>",
    )
    await tick(10)
    expect(stanzas).toHaveLength(2)
    expect(peer.queued).toHaveLength(0)
  })
})

describe('element model', () => {
  test('xml() builds elements and skips empty children and attributes', () => {
    const el = xml(
      'message',
      { to: 'a@b', type: undefined, n: 3 },
      xml('body', null, 'hi'),
      null,
      false,
      [xml('x')],
    )
    expect(el.toString()).toBe('<message to="a@b" n="3"><body>hi</body><x/></message>')
    expect(el).toBeInstanceOf(Element)
  })
})

describe('races and failure paths', () => {
  test('a second connect() joins the attempt in flight', async () => {
    const { peer, conn } = withPeer()
    const a = conn.connect()
    const b = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '' })
    await Promise.all([a, b])
    expect(peer.targets).toHaveLength(1)
  })

  test('disconnect() while connecting stops the attempt', async () => {
    const { peer, conn } = withPeer()
    const connecting = conn.connect()
    const outcome = connecting.catch((e: unknown) => e)
    await peer.nextHeader()
    await conn.disconnect()
    expect(await outcome).toMatchObject({ code: 'stopped' })
    expect(conn.state).toBe('disconnected')
    expect(peer.connected).toBe(false)
  })

  test("disconnect() from the 'connecting' state hook stops the attempt", async () => {
    const { peer, conn } = withPeer()
    const joined: Promise<void>[] = []
    conn.hooks.on('state', ({ state }) => {
      if (state !== 'connecting') return
      joined.push(conn.connect())
      void conn.disconnect()
    })
    const connecting = conn.connect()
    expect(conn.state).toBe('disconnected') // nothing happens before connect() returned
    await expect(connecting).rejects.toMatchObject({ code: 'stopped' })
    // A second connect() from the hook joined the same attempt.
    expect(joined).toHaveLength(1)
    expect(joined[0]).toBe(connecting)
    expect(conn.state).toBe('disconnected')
    expect(peer.connected).toBe(false)
  })

  test('send() before the connection is online rejects, and the login goes on', async () => {
    const { peer, conn } = withPeer()
    const connecting = conn.connect()
    const early = conn.send(xml('presence'))
    await expect(early).rejects.toMatchObject({ code: 'not-connected' })
    await peer.nextHeader()
    const duringNegotiation = conn.send(xml('message', { to: 'a@example.com' }))
    await expect(duringNegotiation).rejects.toMatchObject({ code: 'not-connected' })
    peer.open({ features: '' })
    await connecting
    await conn.send(xml('presence', { id: 'p1' }))
    expect(withoutXmlns((await peer.nextElement()).attrs)).toEqual({ id: 'p1' })
    expect(peer.queued).toHaveLength(0)
  })

  // No AbortSignal per attempt (an AbortController and its listener cost ~20 µs a connect):
  // the connection stops a connect() in flight with end(), which a transport must honour.
  test('a connect() in flight is stopped by end(), and the transport gets no signal', async () => {
    const peer = newPeer()
    const seen: string[] = []
    const conn = createConnection({
      transport: () => {
        const inner = peer.transport()
        return {
          get secure() {
            return inner.secure
          },
          connect(target: ConnectTarget, _events: TransportEvents) {
            seen.push(`signal=${target.signal}`)
            // Never connects: only end() or destroy() can settle it.
            return new Promise<void>((_, reject) => {
              inner.end = () => {
                seen.push('end')
                reject(new Error('stopped by end()'))
              }
            })
          },
          framing: inner.framing,
          write: (data: string) => inner.write(data),
          end: () => inner.end(),
          destroy: (error?: Error) => inner.destroy(error),
        }
      },
      domain: 'example.com',
      timeouts: SHORT,
    })
    const connecting = conn.connect()
    await tick(2)
    await conn.disconnect()
    await expect(connecting).rejects.toMatchObject({ code: 'stopped' })
    expect(seen).toEqual(['signal=undefined', 'end'])
  })

  test('a feature that outlives its attempt can no longer send, wait or restart', async () => {
    let release!: () => void
    const late: Promise<unknown>[] = []
    const plugin = featurePlugin('stubborn', 'stubborn', async (_f, nc) => {
      // Ignores nc.signal on purpose.
      await new Promise<void>((resolve) => {
        release = resolve
      })
      late.push(
        nc.send(xml('late')),
        nc.waitFor(() => true),
        nc.restart(),
      )
      for (const p of late) p.catch(() => undefined)
      return 'done'
    })
    const { peer, conn } = withPeer({
      plugins: [plugin],
    })
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '<x/>' })
    await tick(5)
    peer.close(new Error('reset'))
    await expect(connecting).rejects.toMatchObject({ code: 'disconnected' })
    const before = peer.written.length
    release()
    await tick(5)
    expect(late).toHaveLength(3)
    for (const p of late) await expect(p).rejects.toMatchObject({ code: 'disconnected' })
    expect(peer.written.slice(before)).toEqual([])
  })

  test('a negotiator whose stream attributes throw fails connect() with that error', async () => {
    const throwing = definePlugin({
      name: 'throwing',
      setup(ctx) {
        ctx.negotiation({
          streamAttributes: () => {
            throw new Error('no attributes')
          },
          negotiate: async () => undefined,
        })
      },
    })
    const { conn } = withPeer({ plugins: [throwing] })
    await expect(conn.connect()).rejects.toThrow('no attributes')
    expect(conn.state).toBe('disconnected')
    await tick(SHORT.negotiation + 50) // a header wait left behind would reject unhandled here
  })

  test('a drop while waiting for the peer header ends connect() at once, not by timeout', async () => {
    const peer = newPeer()
    const conn = createConnection({
      transport: peer.transport,
      domain: 'example.com',
      timeouts: { ...SHORT, negotiation: 60_000 },
    })
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.close(new Error('reset'))
    await expect(connecting).rejects.toMatchObject({ code: 'disconnected' })
    expect(conn.state).toBe('disconnected')
  })

  test('a drop while a feature awaits its own work ends connect()', async () => {
    const plugin = featurePlugin('stuck', 'stuck', () => new Promise<never>(() => undefined))
    const { peer, conn } = withPeer({
      plugins: [plugin],
    })
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '<x/>' })
    await tick(5)
    peer.close(new Error('reset'))
    await expect(connecting).rejects.toMatchObject({ code: 'disconnected' })
    expect(conn.state).toBe('disconnected')
  })

  test('a disconnected handler may reconnect at once', async () => {
    const { peer, conn } = await online()
    let again: Promise<void> | undefined
    conn.hooks.once('disconnected', () => {
      again = conn.connect()
    })
    peer.close()
    await tick()
    await peer.nextHeader()
    peer.open({ features: '' })
    await again
    expect(conn.state).toBe('online')
    await conn.disconnect()
    expect(conn.state).toBe('disconnected')
  })

  test('a transport factory that throws leaves the connection reusable', async () => {
    let fail = true
    const peer = newPeer()
    const conn = createConnection({
      transport: () => {
        if (fail) throw new Error('no socket')
        return peer.transport()
      },
      domain: 'example.com',
      timeouts: SHORT,
    })
    await expect(conn.connect()).rejects.toMatchObject({ code: 'transport' })
    expect(conn.state).toBe('disconnected')
    fail = false
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '' })
    await connecting
    expect(conn.state).toBe('online')
  })

  test('after a stream error from the peer: one footer, nothing more is processed', async () => {
    const { peer, conn } = await online()
    const stanzas = record<HookMap['stanza']>((fn) => conn.hooks.on('stanza', fn))
    const disconnected = conn.hooks.next('disconnected')
    peer.answerClose = false
    peer.send(
      "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error><message id='late'/></stream:stream>",
    )
    await disconnected
    expect(peer.written.filter((w) => w.includes(peer.closeMarker))).toHaveLength(1)
    expect(stanzas).toEqual([])
  })

  test('a followed redirect reports no disconnection and no session end', async () => {
    const { peer, conn } = withPeer()
    const events: string[] = []
    for (const name of ['disconnected', 'session-end', 'error'] as const) {
      conn.hooks.on(name, () => {
        events.push(name)
      })
    }
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open()
    peer.send(
      "<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>other.example</see-other-host></stream:error>",
    )
    await peer.nextHeader()
    peer.open({ features: '' })
    await connecting
    expect(events).toEqual([])
  })

  test('a required feature is refused even when other features apply', async () => {
    const sasl = definePlugin({
      name: 'sasl-like',
      setup(ctx) {
        ctx.feature({
          name: 'sasl',
          priority: FeaturePriority.SASL,
          offers: { name: 'mechanisms', xmlns: 'urn:ietf:params:xml:ns:xmpp-sasl' },
          applies: () => true,
          negotiate: async () => 'done',
        })
      },
    })
    const { peer, conn } = withPeer({
      plugins: [sasl],
    })
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open({
      features:
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>",
    })
    await expect(connecting).rejects.toMatchObject({ code: 'negotiation-failed' })
  })

  test('a failing async setup rejects connect() and nothing else', async () => {
    const broken = definePlugin({
      name: 'broken',
      setup: async () => {
        throw new Error('cannot start')
      },
    })
    const { conn } = withPeer({
      plugins: [broken],
    })
    await tick(5)
    await expect(conn.connect()).rejects.toMatchObject({ code: 'setup-failed', plugin: 'broken' })
  })

  test('answers to requests come from the address they were sent to', async () => {
    const { peer } = await online()
    peer.send(
      "<iq type='set' id='c1' to='bot@component.example.com' from='amy@example.com/a'><x xmlns='urn:example'/></iq>",
    )
    const reply = await peer.nextElement()
    expect(reply.attrs).toMatchObject({
      from: 'bot@component.example.com',
      to: 'amy@example.com/a',
      type: 'error',
    })
  })
})

test('outbound backpressure: while the transport is blocked, send() waits for the drain', async () => {
  const { peer, conn } = await online()
  peer.block()
  // This write is accepted (the transport then asks us to wait).
  await conn.send(xml('message', { id: 'first' }))
  let settled = false
  const waiting = conn.send(xml('message', { id: 'b' })).then(() => {
    settled = true
  })
  await tick(10)
  expect(settled).toBe(false)
  expect(peer.written.join('')).not.toContain('id="b"')
  peer.drain()
  await waiting
  expect(peer.written.at(-1)).toContain('id="b"')
})

test('send() never resolves for an element that was not written: a drop rejects the blocked ones', async () => {
  const { peer, conn } = await online()
  peer.block()
  await conn.send(xml('message', { id: 'first' }))
  const outcomes = [1, 2, 3, 4, 5].map((i) =>
    conn.send(xml('message', { id: `m${i}` })).then(
      () => 'written',
      (error: unknown) => error,
    ),
  )
  await tick(5)
  peer.close(new Error('ECONNRESET'))
  const results = await Promise.all(outcomes)
  for (const r of results) expect(r).toMatchObject({ code: 'disconnected' })
  expect(peer.written.join('')).not.toContain('id="m1"')
})

test('a mustRun feature that never ran stops the session from going online', async () => {
  const auth = definePlugin({
    name: 'auth',
    setup(ctx) {
      ctx.feature({
        name: 'auth',
        priority: FeaturePriority.SASL,
        mustRun: true,
        applies: (features) => features.getChild('mechanisms') !== undefined,
        negotiate: async () => 'restart',
      })
    },
  })
  const peer = newPeer()
  const conn = createConnection({
    transport: peer.transport,
    domain: 'example.com',
    timeouts: SHORT,
    plugins: [auth],
  })
  const connecting = conn.connect()
  await peer.nextHeader()
  peer.open({ features: "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>" })
  await expect(connecting).rejects.toMatchObject({ code: 'negotiation-failed' })
  expect(conn.state).toBe('disconnected')
})
