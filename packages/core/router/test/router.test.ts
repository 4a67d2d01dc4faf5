import { describe, expect, expectTypeOf, test } from 'vitest'
import type { Message, Presence } from '@core/connection'
import { router } from '../src/index.js'
import { StanzaError } from '@core/errors'
import { xml } from '@core/xml'
import { connectToMemoryPeer as online } from '@test/memory-peer'

const tick = (ms = 0): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

describe('router', () => {
  test('routes messages by type, sender and payload; handlers get typed stanzas', async () => {
    const { peer, conn } = await online([router])
    const got: string[] = []
    conn.plugins.router.message({ type: 'chat', child: 'body' }, (msg, ctx) => {
      expectTypeOf(msg).toEqualTypeOf<Message>()
      got.push(`chat ${ctx.from?.toString()} ${ctx.payload?.getText()}`)
    })
    conn.plugins.router.message({ from: 'boss@example.com' }, (msg) => {
      got.push(`boss ${msg.attrs.type ?? 'normal'}`)
    })
    conn.plugins.router.message({ xmlns: 'urn:xmpp:receipts' }, (_msg, ctx) => {
      got.push(`receipt ${ctx.payload?.getName()}`)
    })
    const unrouted = conn.hooks.next('stanza')
    peer.send("<message type='chat' from='amy@example.com/a'><body>hi</body></message>")
    peer.send("<message type='chat' from='Boss@example.com/desk'><body>now</body></message>")
    peer.send(
      "<message from='x@example.com'><received xmlns='urn:xmpp:receipts' id='1'/></message>",
    )
    peer.send("<message type='headline' from='news@example.com'><body>x</body></message>")
    expect((await unrouted).element.attrs.from).toBe('news@example.com')
    expect(got).toEqual([
      'chat amy@example.com/a hi',
      'chat boss@example.com/desk now',
      'boss chat',
      'receipt received',
    ])
  })

  test('a full JID filter matches that resource only; presence types default to available', async () => {
    const { peer, conn } = await online([router])
    const got: string[] = []
    conn.plugins.router.presence({ from: 'amy@example.com/phone', type: 'available' }, (p) => {
      expectTypeOf(p).toEqualTypeOf<Presence>()
      got.push(String(p.attrs.from))
    })
    peer.send(
      "<presence from='amy@example.com/laptop'/><presence from='amy@example.com/phone' type='unavailable'/>",
    )
    peer.send("<presence from='amy@example.com/phone'/>")
    await tick(5)
    expect(got).toEqual(['amy@example.com/phone'])
  })

  test('iq handlers answer with a result carrying the returned payload', async () => {
    const { peer, conn } = await online([router])
    conn.plugins.router.iq('get', 'jabber:iq:version', () =>
      xml('query', { xmlns: 'jabber:iq:version' }, xml('name', null, 'bot')),
    )
    peer.send(
      "<iq type='get' id='v1' from='amy@example.com/a'><query xmlns='jabber:iq:version'/></iq>",
    )
    const reply = await peer.nextElement()
    expect(reply.attrs).toMatchObject({ type: 'result', id: 'v1', to: 'amy@example.com/a' })
    expect(reply.getChild('query', 'jabber:iq:version')?.getChildText('name')).toBe('bot')
  })

  test('a StanzaError thrown by an iq handler becomes the error answer', async () => {
    const { peer, conn } = await online([router])
    conn.plugins.router.iq('set', 'urn:example:thing', () => {
      throw new StanzaError('not-allowed', 'cancel', { text: 'no' })
    })
    peer.send(
      "<iq type='set' id='s1' from='amy@example.com/a'><thing xmlns='urn:example:thing'/></iq>",
    )
    const reply = await peer.nextElement()
    expect(reply.attrs).toMatchObject({ type: 'error', id: 's1' })
    const error = reply.getChild('error')
    expect(error?.attrs.type).toBe('cancel')
    expect(error?.getChild('not-allowed', 'urn:ietf:params:xml:ns:xmpp-stanzas')).toBeDefined()
    expect(error?.getChildText('text', 'urn:ietf:params:xml:ns:xmpp-stanzas')).toBe('no')
  })

  test('an iq handler that crashes gets internal-server-error answered and reported', async () => {
    const { peer, conn } = await online([router])
    conn.plugins.router.iq('get', 'urn:example:crash', () => {
      throw new Error('bug')
    })
    const reported = conn.hooks.next('error')
    peer.send("<iq type='get' id='c1' from='amy@example.com/a'><x xmlns='urn:example:crash'/></iq>")
    const reply = await peer.nextElement()
    expect(reply.getChild('error')?.getChild('internal-server-error')).toBeDefined()
    expect((await reported).error.message).toBe('bug')
  })

  test('an iq with no matching handler gets service-unavailable', async () => {
    const { peer, conn } = await online([router])
    conn.plugins.router.iq('get', 'urn:example:a', () => undefined)
    peer.send("<iq type='get' id='u1' from='amy@example.com/a'><x xmlns='urn:example:b'/></iq>")
    const reply = await peer.nextElement()
    expect(reply.getChild('error')?.getChild('service-unavailable')).toBeDefined()
  })

  test('removing a route stops it; nonzas are routed by name and namespace', async () => {
    const { peer, conn } = await online([router])
    const got: string[] = []
    const off = conn.plugins.router.message((m) => {
      got.push(String(m.attrs.id))
    })
    conn.plugins.router.nonza('r', 'urn:xmpp:sm:3', (el) => {
      got.push(el.getName())
    })
    peer.send("<message id='1'/>")
    await tick()
    off()
    const unrouted = conn.hooks.next('stanza')
    peer.send("<message id='2'/><r xmlns='urn:xmpp:sm:3'/>")
    await unrouted
    await tick()
    expect(got).toEqual(['1', 'r'])
  })

  test('removing one of several routes keeps the others in order; removing twice is harmless', async () => {
    const { peer, conn } = await online([router])
    const got: string[] = []
    const r = conn.plugins.router
    const offs = ['a', 'b', 'c'].map((name) =>
      r.message((m) => {
        got.push(`${name}${m.attrs.id}`)
      }),
    )
    const offNonza = r.nonza('a', 'urn:x', () => {
      got.push('nonza')
    })
    r.nonza('b', 'urn:x', () => {
      got.push('other nonza')
    })
    peer.send("<message id='1'/><a xmlns='urn:x'/>")
    await tick()
    offs[1]?.()
    offs[1]?.()
    offNonza()
    offNonza()
    peer.send("<message id='2'/><a xmlns='urn:x'/><b xmlns='urn:x'/>")
    await tick()
    offs[0]?.()
    peer.send("<message id='3'/>")
    await tick()
    expect(got).toEqual(['a1', 'b1', 'c1', 'nonza', 'a2', 'c2', 'other nonza', 'c3'])
  })
})

describe('a malformed from, with routes', () => {
  // The core checks `from` for every stanza: routes change nothing.
  for (const routes of ['a type route', 'a from route']) {
    test(`ends the stream with invalid-from whatever the routes (${routes})`, async () => {
      const { peer, conn } = await online([router])
      const seen: string[] = []
      if (routes === 'a type route')
        conn.plugins.router.message({ type: 'chat' }, () => {
          seen.push('type route')
        })
      if (routes === 'a from route')
        conn.plugins.router.message({ from: 'a@example.com' }, () => {
          seen.push('from route')
        })
      const disconnected = conn.hooks.next('disconnected')
      peer.send("<message type='chat' from='a@@example.com'><body>x</body></message>")
      const { error } = await disconnected
      expect(error).toMatchObject({ condition: 'invalid-from' })
      expect(peer.written.join('')).toContain('<invalid-from')
      expect(seen).toEqual([])
    })
  }
})
