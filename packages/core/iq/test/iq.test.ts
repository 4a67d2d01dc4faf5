import { describe, expect, test } from 'vitest'
import { StreamError } from '@core/errors'
import { AbortError, ConnectionError, StanzaError, TimeoutError } from '@core/errors'
import { iq } from '../src/index.js'
import { JID } from '@core/jid'
import { xml } from '@core/xml'
import { connectToMemoryPeer as online } from '@test/memory-peer'

const ping = (to?: string) =>
  xml('iq', { type: 'get', to }, xml('ping', { xmlns: 'urn:xmpp:ping' }))

const tick = (ms = 0): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

describe('iq request/response', () => {
  test('resolves with the result the addressee sent', async () => {
    const { peer, conn } = await online([iq])
    const request = conn.plugins.iq.request(ping('example.com'))
    const sent = await peer.nextElement()
    expect(sent.attrs).toMatchObject({ type: 'get', to: 'example.com' })
    expect(sent.getChild('ping', 'urn:xmpp:ping')).toBeDefined()
    peer.send(`<iq type='result' id='${sent.attrs.id}' from='example.com'/>`)
    const result = await request
    expect(result.attrs).toMatchObject({ type: 'result', id: sent.attrs.id })
    expect(conn.plugins.iq.pending).toBe(0)
  })

  test('rejects with a StanzaError carrying the condition, type and text', async () => {
    const { peer, conn } = await online([iq])
    const request = conn.plugins.iq.request(ping('bob@example.com/phone'))
    const sent = await peer.nextElement()
    peer.send(
      `<iq type='error' id='${sent.attrs.id}' from='bob@example.com/phone'><error type='cancel'><feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>nope</text></error></iq>`,
    )
    const error = await request.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(StanzaError)
    expect(error).toMatchObject({
      condition: 'feature-not-implemented',
      type: 'cancel',
      text: 'nope',
      code: 'stanza-error',
    })
  })

  test('a reply from someone else is not taken as the answer', async () => {
    const { peer, conn } = await online([iq])
    const stanzas: string[] = []
    conn.hooks.on('stanza', ({ element }) => {
      stanzas.push(String(element.attrs.from))
    })
    const request = conn.plugins.iq.request(ping('bob@example.com/phone'))
    const sent = await peer.nextElement()
    peer.send(`<iq type='result' id='${sent.attrs.id}' from='mallory@example.com/x'/>`)
    peer.send(`<iq type='result' id='${sent.attrs.id}'/>`)
    await tick(5)
    expect(conn.plugins.iq.pending).toBe(1)
    expect(stanzas).toEqual(['mallory@example.com/x', 'undefined'])
    peer.send(`<iq type='result' id='${sent.attrs.id}' from='Bob@Example.com/phone'/>`)
    await expect(request).resolves.toBeDefined()
  })

  test('a request to our own account may be answered without from', async () => {
    const { peer, conn } = await online([iq])
    conn.jid = JID.parse('me@example.com/res')
    const toServer = conn.plugins.iq.request(
      xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })),
    )
    const toBare = conn.plugins.iq.request(ping('me@example.com'))
    const a = await peer.nextElement()
    const b = await peer.nextElement()
    peer.send(`<iq type='result' id='${a.attrs.id}'/>`)
    peer.send(`<iq type='result' id='${b.attrs.id}'/>`)
    await expect(toServer).resolves.toBeDefined()
    await expect(toBare).resolves.toBeDefined()
  })

  test('times out with a TimeoutError; a late answer is then not taken', async () => {
    const { peer, conn } = await online([iq])
    const request = conn.plugins.iq.request(ping('example.com'), { timeout: 20 })
    const sent = await peer.nextElement()
    await expect(request).rejects.toBeInstanceOf(TimeoutError)
    const late = conn.hooks.next('stanza')
    peer.send(`<iq type='result' id='${sent.attrs.id}' from='example.com'/>`)
    expect((await late).element.attrs.id).toBe(sent.attrs.id)
  })

  test('aborts with an AbortError', async () => {
    const { conn } = await online([iq])
    const controller = new AbortController()
    const request = conn.plugins.iq.request(ping('example.com'), { signal: controller.signal })
    controller.abort()
    await expect(request).rejects.toBeInstanceOf(AbortError)
    expect(conn.plugins.iq.pending).toBe(0)
  })

  test('rejects with ConnectionError when the connection drops', async () => {
    const { peer, conn } = await online([iq])
    const request = conn.plugins.iq.request(ping('example.com'))
    await peer.nextElement()
    peer.close(new Error('reset'))
    const error = await request.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConnectionError)
    expect(error).toMatchObject({ code: 'disconnected' })
  })

  test('refuses anything but an iq get or set', async () => {
    const { conn } = await online([iq])
    await expect(conn.plugins.iq.request(xml('iq', { type: 'result' }))).rejects.toBeInstanceOf(
      TypeError,
    )
  })
})

describe('when the session ends', () => {
  test("a pending request fails at once with the session's end cause (the peer's stream error)", async () => {
    const { peer, conn } = await online([iq])
    const request = conn.plugins.iq.request(xml('iq', { type: 'get', to: 'example.com' }))
    const outcome = request.then(
      () => 'answered',
      (error: unknown) => error,
    )
    await peer.nextElement()
    const started = performance.now()
    peer.send(
      "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    )
    const reason = await outcome
    expect(reason).toBeInstanceOf(StreamError)
    expect(reason).toMatchObject({ condition: 'conflict', remote: true })
    expect(conn.signal.reason).toBe(reason)
    // "At once": far below any request or step timeout (30 s / 10 s).
    expect(performance.now() - started).toBeLessThan(1000)
  })
})
