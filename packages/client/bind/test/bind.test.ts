import { type AnyPlugin, createConnection, definePlugin, FeaturePriority } from '@core/connection'
import { ConnectionError, PluginError, StanzaError } from '@core/errors'
import { MemoryPeer } from '@test/memory-peer'
import { describe, expect, test } from 'vitest'
import { BindError, bind, NS_BIND, NS_SESSION } from '../src/index.js'

const SHORT = { connect: 500, negotiation: 500, close: 200, pluginSetup: 500 }
const BIND = `<bind xmlns='${NS_BIND}'/>`
const SESSION = `<session xmlns='${NS_SESSION}'/>`
const OPTIONAL_SESSION = `<session xmlns='${NS_SESSION}'><optional/></session>`

async function start(features: string, plugins: readonly AnyPlugin[] = [bind]) {
  const peer = new MemoryPeer()
  const conn = createConnection({
    transport: peer.transport,
    domain: 'example.com',
    timeouts: SHORT,
    plugins: plugins as [typeof bind],
  })
  const connecting = conn.connect()
  const outcome = connecting.then(
    () => undefined,
    (error: unknown) => error,
  )
  await peer.nextHeader()
  peer.open({ features })
  return { peer, conn, connecting, outcome }
}

const result = (id: string, jid: string) =>
  `<iq type='result' id='${id}'><bind xmlns='${NS_BIND}'><jid>${jid}</jid></bind></iq>`

describe('resource binding', () => {
  test('asks for the configured resource and takes the JID the server returns', async () => {
    const { peer, conn, connecting } = await start(BIND, [bind.with({ resource: 'phone' })])
    const iq = await peer.nextElement()
    expect(iq.name).toBe('iq')
    expect(iq.attrs.type).toBe('set')
    expect(iq.attrs.id).toBeTruthy()
    const request = iq.getChild('bind', NS_BIND)
    expect(request?.getChildText('resource')).toBe('phone')
    peer.send(result(iq.attrs.id as string, 'juliet@example.com/phone'))
    await connecting
    expect(conn.state).toBe('online')
    expect(String(conn.jid)).toBe('juliet@example.com/phone')
    expect(conn.plugins.bind.jid).toBe(conn.jid)
    await conn.disconnect()
  })

  test('without a resource, sends an empty <bind/> and takes the server-assigned one', async () => {
    const { peer, conn, connecting } = await start(BIND)
    const iq = await peer.nextElement()
    const request = iq.getChild('bind', NS_BIND)
    expect(request).toBeDefined()
    expect(request?.children).toEqual([])
    peer.send(result(iq.attrs.id as string, 'juliet@example.com/4db06f06-1ea4'))
    await connecting
    expect(conn.jid?.resource).toBe('4db06f06-1ea4')
    expect(conn.jid?.local).toBe('juliet')
    await conn.disconnect()
  })

  test('the server may assign another resource than the one asked for (RFC 6120 §7.7.2.2)', async () => {
    const { peer, conn, connecting } = await start(BIND, [bind.with({ resource: 'phone' })])
    const iq = await peer.nextElement()
    peer.send(result(iq.attrs.id as string, 'juliet@example.com/phone-2'))
    await connecting
    expect(String(conn.plugins.bind.jid)).toBe('juliet@example.com/phone-2')
    await conn.disconnect()
  })

  test('an answer with another id is not taken for the bind result', async () => {
    const { peer, conn, connecting } = await start(BIND)
    const iq = await peer.nextElement()
    peer.send(result('someone-else', 'mallory@example.com/x'))
    peer.send(result(iq.attrs.id as string, 'juliet@example.com/r'))
    await connecting
    expect(String(conn.jid)).toBe('juliet@example.com/r')
    await conn.disconnect()
  })

  test.each([
    ['conflict', 'cancel', undefined],
    ['not-allowed', 'cancel', 'resource not allowed'],
  ])('a bind error %s: StanzaError, connect() rejects, closed', async (condition, type, text) => {
    const { peer, conn, outcome } = await start(BIND, [bind.with({ resource: 'phone' })])
    const iq = await peer.nextElement()
    const textXml = text ? `<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>${text}</text>` : ''
    peer.send(
      `<iq type='error' id='${iq.attrs.id}'><error type='${type}'><${condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>${textXml}</error></iq>`,
    )
    const error = await outcome
    expect(error).toBeInstanceOf(StanzaError)
    expect(error).toMatchObject({ code: 'stanza-error', condition, type, text })
    expect(conn.state).toBe('disconnected')
    expect(conn.jid).toBeUndefined()
    await peer.waitForEnd()
    expect(peer.connected).toBe(false)
  })

  test.each([
    ['@example.com/r', 'jid-malformed'],
    ['a@b@example.com/r', 'jid-malformed'],
    ['juliet@example.com', 'jid-malformed'],
    ['example.com/r', 'jid-malformed'],
  ])('an invalid or bare JID in the result (%s) is a BindError', async (jid, condition) => {
    const { peer, conn, outcome } = await start(BIND)
    const iq = await peer.nextElement()
    peer.send(result(iq.attrs.id as string, jid))
    const error = await outcome
    expect(error).toBeInstanceOf(BindError)
    expect(error).toMatchObject({ code: 'invalid-bind-result', condition })
    expect(conn.jid).toBeUndefined()
    expect(peer.connected).toBe(false)
  })

  test('a result without <jid/> is a BindError', async () => {
    const { peer, outcome } = await start(BIND)
    const iq = await peer.nextElement()
    peer.send(`<iq type='result' id='${iq.attrs.id}'/>`)
    expect(await outcome).toMatchObject({ code: 'invalid-bind-result' })
  })

  test('a server that never answers: TimeoutError', async () => {
    const { peer, outcome } = await start(BIND)
    await peer.nextElement()
    expect(await outcome).toMatchObject({ code: 'timeout' })
    expect(peer.connected).toBe(false)
  })

  test('not offered: a typed error, nothing is sent, never online without a JID', async () => {
    const { peer, conn, outcome } = await start('')
    const error = await outcome
    expect(error).toBeInstanceOf(ConnectionError)
    expect(error).toMatchObject({ code: 'negotiation-failed' })
    expect(peer.written.join('')).not.toContain('<iq')
    expect(conn.state).toBe('disconnected')
    expect(conn.jid).toBeUndefined()
  })

  test('without SASL the bound JID must still be on the connection domain', async () => {
    const { peer, outcome } = await start(BIND)
    const iq = await peer.nextElement()
    peer.send(result(iq.attrs.id as string, 'juliet@example.org/r'))
    expect(await outcome).toMatchObject({ code: 'foreign-jid' })
  })

  test('an account option that is not a bare JID or a domain fails at setup', () => {
    expect(() =>
      createConnection({
        transport: new MemoryPeer().transport,
        domain: 'example.com',
        plugins: [bind.with({ account: 'juliet@example.com/phone' })],
      }),
    ).toThrow(PluginError)
  })

  test('skipped when a feature before it resumed the session', async () => {
    const resume = definePlugin({
      name: 'fake-resume',
      setup(ctx) {
        ctx.feature({
          name: 'resume',
          priority: FeaturePriority.RESUME,
          applies: () => true,
          async negotiate(_features, nc) {
            nc.resumed = true
            return 'continue'
          },
        })
      },
    })
    const { peer, conn, connecting } = await start(BIND + SESSION, [resume, bind])
    await connecting
    expect(peer.written.join('')).not.toContain('<iq')
    await conn.disconnect()
  })

  test('an invalid resource in the options fails at setup', () => {
    expect(() =>
      createConnection({
        transport: new MemoryPeer().transport,
        domain: 'example.com',
        plugins: [bind.with({ resource: 'bad\u0007' })],
      }),
    ).toThrow(PluginError)
  })
})

describe('session establishment (RFC 3921 §3)', () => {
  async function bound(features: string) {
    const run = await start(features)
    const iq = await run.peer.nextElement()
    expect(iq.getChild('bind', NS_BIND)).toBeDefined()
    run.peer.send(result(iq.attrs.id as string, 'juliet@example.com/r'))
    return run
  }

  test('sent after bind when the server requires it', async () => {
    const { peer, conn, connecting } = await bound(BIND + SESSION)
    const iq = await peer.nextElement()
    expect(iq.attrs.type).toBe('set')
    expect(iq.getChild('session', NS_SESSION)).toBeDefined()
    peer.send(`<iq type='result' id='${iq.attrs.id}'/>`)
    await connecting
    expect(conn.state).toBe('online')
    await conn.disconnect()
  })

  test('skipped when marked <optional/>', async () => {
    const { peer, conn, connecting } = await bound(BIND + OPTIONAL_SESSION)
    await connecting
    expect(peer.written.join('')).not.toContain(NS_SESSION)
    expect(conn.state).toBe('online')
    await conn.disconnect()
  })

  test('a session error is a StanzaError and the connection fails', async () => {
    const { peer, outcome } = await bound(BIND + SESSION)
    const iq = await peer.nextElement()
    peer.send(
      `<iq type='error' id='${iq.attrs.id}'><error type='wait'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`,
    )
    const error = await outcome
    expect(error).toBeInstanceOf(StanzaError)
    expect(error).toMatchObject({ condition: 'internal-server-error', type: 'wait' })
    expect((error as Error).message).toContain('session establishment')
  })
})
