import { createConnection } from '@core/connection'
import { iq } from '@core/iq'
import { router } from '@core/router'
import { StanzaError } from '@core/errors'
import { MemoryPeer } from '@test/memory-peer'
import { afterEach, describe, expect, test, vi } from 'vitest'
import { ping } from './index.js'

async function online() {
  const peer = new MemoryPeer()
  const conn = createConnection({
    transport: peer.transport,
    domain: 'example.com',
    plugins: [iq, router, ping],
  })
  const connecting = conn.connect()
  await peer.nextHeader()
  peer.open({ features: '' })
  await connecting
  return { peer, conn }
}

describe('XEP-0199 ping', () => {
  afterEach(() => {
    vi.restoreAllMocks()
  })

  test('answers a ping with an empty result', async () => {
    const { peer } = await online()
    peer.send(
      "<iq type='get' id='p1' from='example.com' to='me@example.com/r'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    const reply = await peer.nextElement()
    expect(reply.attrs).toMatchObject({ type: 'result', id: 'p1', to: 'example.com' })
    expect(reply.children).toHaveLength(0)
  })

  test('pings the server and resolves with the time between the request and its answer', async () => {
    const { peer, conn } = await online()
    // The clock reads 1000 ms when the ping goes out and 1042.5 ms when its answer is in.
    const clock = vi.spyOn(performance, 'now').mockReturnValue(1000)
    const rtt = conn.plugins.ping.ping()
    const sent = await peer.nextElement()
    expect(sent.attrs).toMatchObject({ type: 'get', to: 'example.com' })
    expect(sent.getChild('ping', 'urn:xmpp:ping')).toBeDefined()
    clock.mockReturnValue(1042.5)
    peer.send(`<iq type='result' id='${sent.attrs.id}' from='example.com'/>`)
    expect(await rtt).toBe(42.5)
  })

  test('service-unavailable proves presence; other errors reject', async () => {
    const { peer, conn } = await online()
    const a = conn.plugins.ping.ping('bob@example.com/x')
    const sa = await peer.nextElement()
    peer.send(
      `<iq type='error' id='${sa.attrs.id}' from='bob@example.com/x'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`,
    )
    await expect(a).resolves.toBeTypeOf('number')
    const b = conn.plugins.ping.ping('nobody@example.com')
    const sb = await peer.nextElement()
    peer.send(
      `<iq type='error' id='${sb.attrs.id}' from='nobody@example.com'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`,
    )
    await expect(b).rejects.toBeInstanceOf(StanzaError)
  })

  test('times out', async () => {
    const { conn } = await online()
    await expect(conn.plugins.ping.ping(undefined, { timeout: 20 })).rejects.toMatchObject({
      code: 'timeout',
    })
  })
})
