// RFC 7395 framing as the transport's strategy: what goes on the wire, and malformed frames.
import { describe, expect, test } from 'vitest'
import { createConnection, definePlugin } from '@core/connection'
import { xml } from '@core/xml'
import { MemoryPeer } from '@test/memory-peer'
import { websocketFraming } from '../src/index.js'

const SHORT = { connect: 500, negotiation: 500, close: 200, pluginSetup: 500 }

async function wsOnline() {
  const peer = new MemoryPeer({ framing: websocketFraming })
  const conn = createConnection({
    transport: peer.transport,
    domain: 'example.com',
    timeouts: SHORT,
  })
  const connecting = conn.connect()
  await peer.nextHeader()
  peer.open({ features: '' })
  await connecting
  return { peer, conn }
}

describe('RFC 7395 framing', () => {
  test('opens with <open/>, one element per write with its namespace, closes with <close/>', async () => {
    const { peer, conn } = await wsOnline()
    expect(peer.written[0]).toBe(
      "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>",
    )
    const before = peer.written.length
    await Promise.all([
      conn.send(xml('message', { id: 'a' })),
      conn.send(xml('r', { xmlns: 'urn:xmpp:sm:3' })),
    ])
    expect(peer.written.slice(before)).toEqual([
      '<message xmlns="jabber:client" id="a"/>',
      '<r xmlns="urn:xmpp:sm:3"/>',
    ])
    await conn.disconnect()
    expect(peer.written.at(-1)).toBe("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
  })

  test('a restart is a new <open/> with no <close/> before it', async () => {
    const peer = new MemoryPeer({ framing: websocketFraming })
    let restarts = 0
    const restarting = definePlugin({
      name: 'auth',
      setup(ctx) {
        ctx.feature({
          name: 'auth',
          priority: 1,
          applies: () => true,
          negotiate: async () => {
            if (restarts++ > 0) return 'done'
            peer.restart()
            return 'restart'
          },
        })
      },
    })
    const conn = createConnection({
      transport: peer.transport,
      domain: 'example.com',
      timeouts: SHORT,
      plugins: [restarting],
    })
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '<x/>' })
    await peer.nextHeader()
    peer.open({ features: '<x/>' })
    await connecting
    expect(peer.written.filter((w) => w.startsWith('<open '))).toHaveLength(2)
    expect(peer.written.some((w) => w.startsWith('<close'))).toBe(false)
  })

  test.each([
    ['a binary message', new TextEncoder().encode("<message xmlns='jabber:client'/>")],
    [
      'two elements in one message',
      "<message xmlns='jabber:client'/><message xmlns='jabber:client'/>",
    ],
    ['a message that does not start with <', " <message xmlns='jabber:client'/>"],
    ['an incomplete element', "<message xmlns='jabber:client'><body>"],
  ])('%s ends the stream with a typed error', async (_name, data) => {
    const { peer, conn } = await wsOnline()
    const disconnected = conn.hooks.next('disconnected')
    peer.sendRaw(data)
    const { error } = await disconnected
    expect(error).toMatchObject({
      code: 'stream-error',
      condition: 'not-well-formed',
      remote: false,
    })
    expect(peer.written.join('')).toContain(
      "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><not-well-formed",
    )
  })
})
