// The negotiation strategy is something one plugin brings, with the stream namespace it
// needs: here a handshake in the style of XEP-0114, next to a plugin written for clients.
import { describe, expect, test } from 'vitest'
import { definePlugin, type NegotiationContext } from '../src/index.js'
import { xml } from '@core/xml'
import { MESSAGE_FRAMED, inbox, withPeer } from './helpers.js'

const NS_ACCEPT = 'jabber:component:accept'

const handshake = definePlugin({
  name: 'handshake',
  setup(ctx) {
    ctx.negotiation({
      xmlns: NS_ACCEPT,
      streamAttributes: (connection) => ({
        to: connection.domain,
        xmlns: NS_ACCEPT,
        'xmlns:stream': 'http://etherx.jabber.org/streams',
      }),
      async negotiate(nc: NegotiationContext) {
        await nc.send(xml('handshake', {}, `proof-for-${nc.header.id}`))
        await nc.waitFor((el) => el.name === 'handshake')
      },
    })
  },
})

describe('a negotiation strategy from a plugin', () => {
  test('it opens its own namespace, does its handshake, and client plugins work on it unchanged', async () => {
    const { peer, conn } = withPeer({ domain: 'bot.example.com', plugins: [handshake, inbox] })
    expect(conn.xmlns).toBe(NS_ACCEPT)
    const seen: string[] = []
    conn.plugins.inbox.message((msg) => {
      seen.push(String(msg.getChildText('body')))
    })
    const connecting = conn.connect()
    const header = await peer.nextHeader()
    expect(header).toMatchObject({ to: 'bot.example.com' })
    // Over RFC 7395, <open/> carries no content namespace: each element declares its own.
    if (!MESSAGE_FRAMED) expect(header).toMatchObject({ xmlns: NS_ACCEPT })
    peer.open({ xmlns: NS_ACCEPT, id: 'abc', from: 'bot.example.com' })
    const proof = await peer.nextElement()
    expect(proof.name).toBe('handshake')
    expect(proof.getText()).toBe('proof-for-abc')
    peer.send('<handshake/>')
    await connecting
    expect(conn.state).toBe('online')
    peer.send(
      `<message xmlns='${NS_ACCEPT}' from='a@example.com' to='bot.example.com'><body>hi</body></message>`,
    )
    await new Promise((resolve) => setTimeout(resolve, 0))
    expect(seen).toEqual(['hi'])
  })

  // A stream header's content namespace exists on the XML stream framing only.
  test.runIf(!MESSAGE_FRAMED)(
    'a peer opening a stream in another namespace is refused with invalid-namespace',
    async () => {
      const { peer, conn } = withPeer({ domain: 'bot.example.com', plugins: [handshake] })
      const connecting = conn.connect()
      await peer.nextHeader()
      peer.open({ xmlns: 'jabber:client' })
      await expect(connecting).rejects.toMatchObject({ condition: 'invalid-namespace' })
    },
  )

  test('two plugins replacing the strategy: duplicate-negotiator, naming both', () => {
    const other = definePlugin({
      name: 'other',
      setup(ctx) {
        ctx.negotiation({ streamAttributes: () => ({}), negotiate: async () => undefined })
      },
    })
    let error: unknown
    try {
      withPeer({ plugins: [handshake, other] })
    } catch (e) {
      error = e
    }
    expect(error).toMatchObject({
      code: 'setup-failed',
      cause: expect.objectContaining({ code: 'duplicate-negotiator' }),
    })
    expect(String((error as Error).message)).toContain('"handshake"')
  })
})
