import { createConnection, definePlugin, FeaturePriority } from '@core/connection'
import { xml } from '@core/xml'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { NS_TLS, starttls, TcpTransport, TLSError, tcp } from '../src/index.js'
import {
  certs,
  header,
  onlyTlsRecords,
  PLAIN_FEATURES,
  Peer,
  type PeerConnection,
  selfSignedTls,
  STARTTLS_FEATURES,
  serverTls,
  settle,
} from './peer.js'

const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl'

/** A stand-in for SASL PLAIN: it sends credentials as soon as it runs. */
const fakeAuth = definePlugin({
  name: 'fake-auth',
  setup(ctx) {
    ctx.feature({
      name: 'fake-auth',
      priority: FeaturePriority.SASL,
      applies: (features) => features.getChild('mechanisms', NS_SASL) !== undefined,
      async negotiate(_features, nc) {
        await nc.send(xml('auth', { xmlns: NS_SASL, mechanism: 'PLAIN' }, 'AGFteQBzZWNyZXQ='))
        return 'done'
      },
    })
  },
})

/** Records the raw chunks the connection read. */
const rawTap = definePlugin({
  name: 'raw-tap',
  setup(ctx) {
    const chunks: string[] = []
    ctx.onRaw((direction, data) => {
      if (direction === 'in') chunks.push(Buffer.from(data).toString('utf8'))
    })
    return chunks
  },
})

let peer: Peer
beforeEach(async () => {
  peer = await Peer.listen()
})
afterEach(async () => {
  await peer.close()
})

function clientFor(port: number, domain: string, transport = tcp({ tls: { ca: certs.ca } })) {
  return createConnection({
    transport,
    service: `xmpp://127.0.0.1:${port}`,
    domain,
    plugins: [starttls],
    timeouts: { negotiation: 3_000, close: 500 },
  })
}

/** The server's side of STARTTLS up to <proceed/>. */
async function upToProceed(server: PeerConnection, proceed = `<proceed xmlns='${NS_TLS}'/>`) {
  await server.nextHeader()
  server.send(header() + STARTTLS_FEATURES)
  const request = await server.nextElement()
  expect(request.name).toBe('starttls')
  expect(request.attrs.xmlns).toBe(NS_TLS)
  server.send(proceed)
}

function elementsIn(events: { kind: string }[]): number {
  return events.filter((e) => e.kind === 'element').length
}

describe('STARTTLS', () => {
  it('upgrades to verified TLS, restarts the stream and comes online', async () => {
    const conn = clientFor(peer.port, 'localhost')
    const online = settle(conn.connect())
    const server = await peer.nextPeer()
    await upToProceed(server)
    const tls = await server.startTls(serverTls)
    // SNI carries the XMPP domain.
    expect(tls.servername).toBe('localhost')
    const restart = await server.nextHeader()
    expect(restart.to).toBe('localhost')
    server.send(`${header('s2')}<stream:features/>`)
    expect(await online).toEqual({ value: undefined })
    expect(conn.state).toBe('online')
    expect(conn.transport?.secure).toBe(true)

    // Everything after <proceed/> went out as TLS records, and stanzas flow over TLS.
    await conn.send(xml('message', { to: 'amy@localhost' }, xml('body', null, 'hello')))
    const message = await server.nextElement()
    expect(message.getChildText('body')).toBe('hello')
    expect(onlyTlsRecords(Buffer.concat(server.rawAfterTls))).toBe(true)
    expect(Buffer.concat(server.rawAfterTls).includes('hello')).toBe(false)
    await conn.disconnect()
    expect(conn.state).toBe('disconnected')
  })

  it('rejects a certificate that is not valid for the domain and sends nothing in plaintext', async () => {
    const conn = clientFor(peer.port, 'wrong.test')
    const online = settle(conn.connect())
    const server = await peer.nextPeer()
    await upToProceed(server)
    const handshake = settle(server.startTls(serverTls))
    const result = await online
    expect(result).toHaveProperty('error')
    const error = (result as { error: unknown }).error
    expect(error).toBeInstanceOf(TLSError)
    expect((error as TLSError).code).toBe('certificate')
    expect((error as TLSError).condition).toBeUndefined()
    expect((error as TLSError).reason).toBe('ERR_TLS_CERT_ALTNAME_INVALID')
    expect((error as TLSError).message).toContain('"wrong.test"')
    expect(conn.state).toBe('disconnected')
    await server.closed
    await handshake
    // The client sent TLS records only after <proceed/>, and no application data.
    const after = Buffer.concat(server.rawAfterTls)
    expect(after.length).toBeGreaterThan(0)
    expect(onlyTlsRecords(after)).toBe(true)
    expect(after.includes('</stream:stream>')).toBe(false)
    expect(server.tlsIn).toEqual([])
    expect(elementsIn(await server.rest())).toBe(0)
  })

  it('rejects a self-signed certificate by default', async () => {
    const conn = clientFor(peer.port, 'localhost', tcp())
    const online = settle(conn.connect())
    const server = await peer.nextPeer()
    await upToProceed(server)
    const handshake = settle(server.startTls(selfSignedTls))
    const result = await online
    const error = (result as { error: TLSError }).error
    expect(error).toBeInstanceOf(TLSError)
    expect(error.code).toBe('certificate')
    expect(error.reason).toBe('DEPTH_ZERO_SELF_SIGNED_CERT')
    expect(error.message).toContain('"localhost"')
    await server.closed
    await handshake
    expect(server.tlsIn).toEqual([])
  })

  it('accepts a self-signed certificate with tls.insecure', async () => {
    const conn = clientFor(peer.port, 'localhost', tcp({ tls: { insecure: true } }))
    const online = settle(conn.connect())
    const server = await peer.nextPeer()
    await upToProceed(server)
    await server.startTls(selfSignedTls)
    await server.nextHeader()
    server.send(`${header('s2')}<stream:features/>`)
    expect(await online).toEqual({ value: undefined })
    expect(conn.transport?.secure).toBe(true)
    await conn.disconnect()
  })

  it('fails with tls-required when the server offers no STARTTLS, and sends nothing more', async () => {
    const conn = createConnection({
      transport: tcp({ tls: { ca: certs.ca } }),
      service: `xmpp://127.0.0.1:${peer.port}`,
      domain: 'localhost',
      plugins: [starttls, fakeAuth],
      timeouts: { close: 500 },
    })
    const online = settle(conn.connect())
    const server = await peer.nextPeer()
    await server.nextHeader()
    server.send(header() + PLAIN_FEATURES)
    const result = await online
    const error = (result as { error: TLSError }).error
    expect(error).toBeInstanceOf(TLSError)
    expect(error.code).toBe('tls-required')
    expect(conn.state).toBe('disconnected')
    // No <auth/> (no credentials in the clear), no element at all: at most our stream close.
    const rest = await server.rest()
    expect(elementsIn(rest)).toBe(0)
    expect(Buffer.concat(server.rawIn).includes('<auth')).toBe(false)
  })

  it('fails with starttls-failed on <failure/>', async () => {
    const conn = clientFor(peer.port, 'localhost')
    const online = settle(conn.connect())
    const server = await peer.nextPeer()
    await upToProceed(server, `<failure xmlns='${NS_TLS}'/></stream:stream>`)
    server.raw.end()
    const result = await online
    const error = (result as { error: TLSError }).error
    expect(error).toBeInstanceOf(TLSError)
    expect(error.code).toBe('starttls-failed')
    expect(error.element?.name).toBe('failure')
    expect(conn.state).toBe('disconnected')
    expect(elementsIn(await server.rest())).toBe(0)
  })

  it('fails with starttls-failed when the server drops instead of answering', async () => {
    const conn = clientFor(peer.port, 'localhost')
    const online = settle(conn.connect())
    const server = await peer.nextPeer()
    await server.nextHeader()
    server.send(header() + STARTTLS_FEATURES)
    expect((await server.nextElement()).name).toBe('starttls')
    server.destroy()
    const result = await online
    const error = (result as { error: TLSError }).error
    expect(error).toBeInstanceOf(TLSError)
    expect(error.code).toBe('starttls-failed')
    expect(conn.state).toBe('disconnected')
    expect(conn.transport).toBeUndefined()
  })

  it('does not act on plaintext sent after <proceed/> in the same TCP write', async () => {
    const conn = createConnection({
      transport: tcp({ tls: { ca: certs.ca } }),
      service: `xmpp://127.0.0.1:${peer.port}`,
      domain: 'localhost',
      plugins: [starttls, rawTap],
    })
    const bodies: string[] = []
    conn.hooks.on('stanza', ({ element }) => {
      bodies.push(element.getChildText('body') ?? '')
    })
    const online = settle(conn.connect())
    const server = await peer.nextPeer()
    await upToProceed(
      server,
      `<proceed xmlns='${NS_TLS}'/><message from='evil@localhost' type='chat'><body>injected</body></message><stream:features/>`,
    )
    await server.startTls(serverTls)
    await server.nextHeader()
    server.send(`${header('s2')}<stream:features/>`)
    expect(await online).toEqual({ value: undefined })
    server.send("<message from='amy@localhost' type='chat'><body>after TLS</body></message>")
    await expect.poll(() => bodies).toEqual(['after TLS'])
    // The injection did arrive, in the same chunk as <proceed/>.
    expect(
      conn.plugins['raw-tap'].some((c) => c.includes('<proceed') && c.includes('injected')),
    ).toBe(true)
    await conn.disconnect()
  })
})

describe('allowPlaintext', () => {
  it('goes on without TLS when the plugin allows it', async () => {
    const conn = createConnection({
      transport: tcp(),
      service: `xmpp://127.0.0.1:${peer.port}`,
      domain: 'localhost',
      plugins: [starttls.with({ allowPlaintext: true })],
    })
    const online = settle(conn.connect())
    const server = await peer.nextPeer()
    await server.nextHeader()
    server.send(`${header()}<stream:features/>`)
    expect(await online).toEqual({ value: undefined })
    expect(conn.transport?.secure).toBe(false)
    await conn.disconnect()
  })

  it('goes on without TLS when tcp({ allowPlaintext }) allows it', async () => {
    const conn = clientFor(peer.port, 'localhost', tcp({ allowPlaintext: true }))
    const online = settle(conn.connect())
    const server = await peer.nextPeer()
    await server.nextHeader()
    server.send(`${header()}<stream:features/>`)
    expect(await online).toEqual({ value: undefined })
    expect(conn.transport).toBeInstanceOf(TcpTransport)
    expect((conn.transport as TcpTransport).allowPlaintext).toBe(true)
    expect(conn.transport?.secure).toBe(false)
    await conn.disconnect()
  })

  it('still upgrades when the server offers STARTTLS', async () => {
    const conn = clientFor(
      peer.port,
      'localhost',
      tcp({ allowPlaintext: true, tls: { ca: certs.ca } }),
    )
    const online = settle(conn.connect())
    const server = await peer.nextPeer()
    await upToProceed(server)
    await server.startTls(serverTls)
    await server.nextHeader()
    server.send(`${header('s2')}<stream:features/>`)
    expect(await online).toEqual({ value: undefined })
    expect(conn.transport?.secure).toBe(true)
    await conn.disconnect()
  })
})

describe('direct TLS (XEP-0368)', () => {
  it('connects with TLS first, ALPN xmpp-client and SNI, and skips STARTTLS', async () => {
    const direct = await Peer.listen({
      directTls: { ...serverTls, ALPNProtocols: ['h2', 'xmpp-client'] },
    })
    try {
      const conn = createConnection({
        transport: tcp({ tls: { ca: certs.ca } }),
        service: `xmpps://127.0.0.1:${direct.port}`,
        domain: 'localhost',
        plugins: [starttls],
      })
      const online = settle(conn.connect())
      const server = await direct.nextPeer()
      const handshake = await server.handshake
      expect(handshake).toHaveProperty('value')
      expect(server.tls?.alpnProtocol).toBe('xmpp-client')
      expect(server.tls?.servername).toBe('localhost')
      await server.nextHeader()
      server.send(`${header()}<stream:features/>`)
      expect(await online).toEqual({ value: undefined })
      expect(conn.transport?.secure).toBe(true)
      expect((conn.transport as TcpTransport).alpnProtocol).toBe('xmpp-client')
      expect(onlyTlsRecords(Buffer.concat(server.rawIn))).toBe(true)
      await conn.disconnect()
      // No <starttls/> over TLS: the client only closed its stream.
      expect(elementsIn(await server.rest())).toBe(0)
    } finally {
      await direct.close()
    }
  })

  it('rejects a certificate that is not valid for the domain', async () => {
    const direct = await Peer.listen({ directTls: serverTls })
    try {
      const conn = createConnection({
        transport: tcp({ tls: { ca: certs.ca } }),
        service: `xmpps://127.0.0.1:${direct.port}`,
        domain: 'wrong.test',
        plugins: [starttls],
      })
      const result = await settle(conn.connect())
      const error = (result as { error: TLSError }).error
      expect(error).toBeInstanceOf(TLSError)
      expect(error.code).toBe('certificate')
      expect(error.message).toContain('"wrong.test"')
      const server = await direct.nextPeer()
      await server.closed
      expect(server.tlsIn).toEqual([])
    } finally {
      await direct.close()
    }
  })
})

describe('see-other-host', () => {
  async function redirectTo(port: number) {
    const server = await peer.nextPeer()
    await server.nextHeader()
    server.send(
      `${header()}<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>127.0.0.1:${port}</see-other-host></stream:error></stream:stream>`,
    )
    server.raw.end()
  }

  it('connects to the new host with STARTTLS, checked against the domain', async () => {
    const other = await Peer.listen()
    try {
      const conn = clientFor(peer.port, 'example.com')
      const online = settle(conn.connect())
      await redirectTo(other.port)
      const server = await other.nextPeer()
      await upToProceed(server)
      const tls = await server.startTls(serverTls)
      expect(tls.servername).toBe('example.com')
      await server.nextHeader()
      server.send(`${header('s2', 'example.com')}<stream:features/>`)
      expect(await online).toEqual({ value: undefined })
      expect((conn.transport as TcpTransport).remote).toEqual({
        host: '127.0.0.1',
        port: other.port,
        tls: 'starttls',
      })
      await conn.disconnect()
    } finally {
      await other.close()
    }
  })

  it('still rejects a certificate that is valid for the new host but not for the domain', async () => {
    // The certificate names 127.0.0.1, the redirect's host, but not wrong.test.
    const other = await Peer.listen()
    try {
      const conn = clientFor(peer.port, 'wrong.test')
      const online = settle(conn.connect())
      await redirectTo(other.port)
      const server = await other.nextPeer()
      await upToProceed(server)
      const handshake = settle(server.startTls(serverTls))
      const error = ((await online) as { error: TLSError }).error
      expect(error).toBeInstanceOf(TLSError)
      expect(error.code).toBe('certificate')
      expect(error.message).toContain('"wrong.test"')
      await handshake
      await server.closed
      expect(server.tlsIn).toEqual([])
    } finally {
      await other.close()
    }
  })
})
