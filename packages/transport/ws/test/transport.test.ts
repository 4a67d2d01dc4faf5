// The WebSocket transport against an in-process WebSocket server: RFC 7395 framing as the
// server sees it, hostile messages, redirects, and the plaintext policy.
import { createConnection, definePlugin } from '@core/connection'
import { StreamError, TimeoutError } from '@core/errors'
import { xml } from '@core/xml'
import { testCerts } from '@test/server'
import { afterEach, describe, expect, test } from 'vitest'
import { WebSocket as WsPackageWebSocket } from 'ws'
import {
  type WebSocketConstructor,
  WebSocketError,
  type WebSocketOptions,
  WebSocketTransport,
  hostMeta,
  websocket,
} from '../src/index.js'
import {
  FRAMING,
  NO_FEATURES,
  serverOpen,
  startWsServer,
  type WsPeer,
  type WsServer,
} from './ws-server.js'

const SHORT = { connect: 2000, negotiation: 2000, close: 300 }

/**
 * Every WebSocket implementation this runtime has: the `ws` package always; Node's own
 * (undici) where `globalThis.WebSocket` exists (Node 22 and later). Each test runs on each.
 */
const IMPLEMENTATIONS: [string, WebSocketConstructor | undefined][] = [
  ['ws package', WsPackageWebSocket as unknown as WebSocketConstructor],
]
if (typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'function') {
  IMPLEMENTATIONS.push(['globalThis.WebSocket', undefined])
}

const servers: WsServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

async function server(options?: Parameters<typeof startWsServer>[0]): Promise<WsServer> {
  const s = await startWsServer(options)
  servers.push(s)
  return s
}

describe.each(IMPLEMENTATIONS)('over %s', (_name, Impl) => {
  const options = (extra: WebSocketOptions = {}): WebSocketOptions =>
    Impl ? { WebSocket: Impl, ...extra } : extra

  function connection(service: string, extra: WebSocketOptions = {}) {
    return createConnection({
      transport: websocket(options(extra)),
      service,
      domain: 'localhost',
      timeouts: SHORT,
    })
  }

  /** A connection brought online by a scripted server: <open/>, then no features. */
  async function online() {
    const s = await server()
    const conn = connection(s.url())
    const connecting = conn.connect()
    const peer = await s.nextPeer()
    const open = await peer.nextMessage()
    peer.socket.send(serverOpen())
    peer.socket.send(NO_FEATURES)
    await connecting
    return { s, conn, peer, open }
  }

  test('subprotocol xmpp, <open/> first, one element per message with its namespace, <close/> last', async () => {
    const { conn, peer, open } = await online()
    expect(peer.offered).toEqual(['xmpp'])
    expect(open).toBe(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`)
    expect(conn.transport).toBeInstanceOf(WebSocketTransport)
    expect(conn.transport?.secure).toBe(false)
    await Promise.all([
      conn.send(xml('message', { to: 'a@localhost', id: 'm1' }, xml('body', {}, 'hi'))),
      conn.send(xml('r', { xmlns: 'urn:xmpp:sm:3' })),
    ])
    expect(await peer.nextMessage()).toBe(
      '<message xmlns="jabber:client" to="a@localhost" id="m1"><body>hi</body></message>',
    )
    expect(await peer.nextMessage()).toBe('<r xmlns="urn:xmpp:sm:3"/>')
    const disconnecting = conn.disconnect()
    expect(await peer.nextMessage()).toBe(`<close xmlns='${FRAMING}'/>`)
    peer.socket.send(`<close xmlns='${FRAMING}'/>`)
    await disconnecting
    expect(await peer.closed).toBe(1000)
    // RFC 7395 §3.8: no whitespace keepalives, nor any message that is not one element.
    for (const m of peer.messages) expect(m).toMatch(/^<[^\s]/)
    expect(conn.state).toBe('disconnected')
  })

  test('stanzas from the server reach the app', async () => {
    const { conn, peer } = await online()
    const got = new Promise((resolve) => conn.hooks.on('stanza', ({ element }) => resolve(element)))
    peer.socket.send(
      "<message xmlns='jabber:client' from='b@localhost' id='x'><body>yo</body></message>",
    )
    const element = (await got) as {
      attrs: Record<string, string>
      getChildText(n: string): string
    }
    expect(element.attrs.from).toBe('b@localhost')
    expect(element.getChildText('body')).toBe('yo')
    await conn.disconnect()
  })

  test('a server that selects no subprotocol: the handshake fails, nothing sent', async () => {
    const s = await server({ protocol: false })
    const conn = connection(s.url())
    const error = await conn.connect().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(WebSocketError)
    // The ws package says why; Node's own WebSocket depends on its version (22 says why,
    // 24 does not), browsers never do. A WebSocket that opens anyway: see the fake below.
    expect(['subprotocol', 'connect-failed']).toContain((error as WebSocketError).code)
    if (Impl) expect(error).toMatchObject({ code: 'subprotocol' })
    expect(conn.state).toBe('disconnected')
    for (const peer of s.peers) {
      await peer.closed
      expect(peer.messages).toEqual([])
    }
  })

  test.each([
    [
      'a binary message',
      (p: { socket: { send(d: unknown): void } }) =>
        p.socket.send(new Uint8Array([60, 97, 47, 62])),
    ],
    [
      'two elements in one message',
      (p: { socket: { send(d: unknown): void } }) =>
        p.socket.send("<message xmlns='jabber:client'/><message xmlns='jabber:client'/>"),
    ],
    [
      'a message that does not start with <',
      (p: { socket: { send(d: unknown): void } }) =>
        p.socket.send(" <message xmlns='jabber:client'/>"),
    ],
    [
      'an empty message (a whitespace keepalive, say)',
      (p: { socket: { send(d: unknown): void } }) => p.socket.send(''),
    ],
    ['a lone space', (p: { socket: { send(d: unknown): void } }) => p.socket.send(' ')],
    [
      'half an element',
      (p: { socket: { send(d: unknown): void } }) =>
        p.socket.send("<message xmlns='jabber:client'>"),
    ],
  ])(
    '%s: StreamError not-well-formed, a stream error sent, the WebSocket closed',
    async (_case, hostile) => {
      const { conn, peer } = await online()
      const disconnected = conn.hooks.next('disconnected')
      hostile(peer)
      const { error } = await disconnected
      expect(error).toBeInstanceOf(StreamError)
      expect(error).toMatchObject({
        code: 'stream-error',
        condition: 'not-well-formed',
        remote: false,
      })
      // The server was told why, in a message of its own, then the stream was closed.
      const rest = peer.messages.slice(1)
      expect(rest[0]).toMatch(
        /^<stream:error xmlns:stream='http:\/\/etherx\.jabber\.org\/streams'><not-well-formed /,
      )
      expect(rest[1]).toBe(`<close xmlns='${FRAMING}'/>`)
      await peer.closed
      expect(conn.state).toBe('disconnected')
    },
  )

  test.each([
    ['the connection drops (no close frame)', (p: WsPeer) => p.socket.terminate(), 1006],
    ['the server closes with 1011', (p: WsPeer) => p.socket.close(1011, 'oops'), 1011],
  ])('%s: disconnected, reason dropped, WebSocketError closed', async (_case, close, code) => {
    const { conn, peer } = await online()
    const disconnected = conn.hooks.next('disconnected')
    close(peer)
    const { error, reason, clean } = await disconnected
    expect(error).toBeInstanceOf(WebSocketError)
    expect(error).toMatchObject({ code: 'closed', closeCode: code })
    expect(reason).toBe('dropped')
    expect(clean).toBe(false)
    expect(conn.state).toBe('disconnected')
  })

  test('a restart is a new <open/> with no <close/> before it (RFC 7395 §3.7)', async () => {
    const s = await server()
    let restarted = false
    const restartOnce = definePlugin({
      name: 'restarter',
      setup(ctx) {
        ctx.feature({
          name: 'restart-once',
          priority: 1,
          applies: () => !restarted,
          negotiate: async () => {
            restarted = true
            return 'restart'
          },
        })
      },
    })
    const conn = createConnection({
      transport: websocket(options()),
      service: s.url(),
      domain: 'localhost',
      timeouts: SHORT,
      plugins: [restartOnce],
    })
    const connecting = conn.connect()
    const peer = await s.nextPeer()
    await peer.nextMessage()
    peer.socket.send(serverOpen())
    peer.socket.send(
      "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><x xmlns='urn:test'/></stream:features>",
    )
    const second = await peer.nextMessage()
    expect(second).toBe(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`)
    peer.socket.send(serverOpen())
    peer.socket.send(NO_FEATURES)
    await connecting
    expect(peer.messages.filter((m) => m.startsWith('<close'))).toEqual([])
    await conn.disconnect()
  })

  describe('see-other-uri (RFC 7395 §3.6.1)', () => {
    test('a <close see-other-uri/> in answer to <open/>: the same <open/> goes to the new endpoint', async () => {
      const target = await server()
      const first = await server({
        onPeer: (peer) => {
          void peer.nextMessage().then(() => {
            peer.socket.send(`<close xmlns='${FRAMING}' see-other-uri='${target.url('/moved')}'/>`)
          })
        },
      })
      const conn = connection(first.url())
      const connecting = conn.connect()
      const moved = await target.nextPeer()
      const open = await moved.nextMessage()
      expect(open).toBe(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`)
      moved.socket.send(serverOpen())
      moved.socket.send(NO_FEATURES)
      await connecting
      expect((conn.transport as WebSocketTransport).url).toBe(target.url('/moved'))
      expect(await first.peers[0]?.closed).toBe(1000)
      await conn.send(xml('presence'))
      expect(await moved.nextMessage()).toBe('<presence xmlns="jabber:client"/>')
      await conn.disconnect()
    })

    test('redirects are capped: the fourth one fails with redirect-limit', async () => {
      const loop: WsServer = await server({
        onPeer: (peer) => {
          void peer.nextMessage().then(() => {
            peer.socket.send(`<close xmlns='${FRAMING}' see-other-uri='${loop.url()}'/>`)
          })
        },
      })
      const conn = connection(loop.url())
      const error = await conn.connect().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(WebSocketError)
      expect(error).toMatchObject({ code: 'redirect-limit' })
      expect(loop.peers).toHaveLength(4)
    })

    test('a redirect to another transport (BOSH over https) is refused', async () => {
      const s = await server({
        onPeer: (peer) => {
          void peer.nextMessage().then(() => {
            peer.socket.send(
              `<close xmlns='${FRAMING}' see-other-uri='https://example.com/http-bind'/>`,
            )
          })
        },
      })
      const error = await connection(s.url())
        .connect()
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      expect(error).toMatchObject({ code: 'redirect-refused' })
      expect(s.peers).toHaveLength(1)
    })

    test('a redirect to ws:// on another host is refused without allowPlaintext', async () => {
      const s = await server({
        onPeer: (peer) => {
          void peer.nextMessage().then(() => {
            peer.socket.send(`<close xmlns='${FRAMING}' see-other-uri='ws://xmpp.example.com/ws'/>`)
          })
        },
      })
      const error = await connection(s.url())
        .connect()
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      expect(error).toMatchObject({ code: 'plaintext-refused' })
    })

    test('a <close see-other-uri/> once the stream is up ends the stream; the URI is noted', async () => {
      const { conn, peer, s } = await online()
      const disconnected = conn.hooks.next('disconnected')
      const transport = conn.transport as WebSocketTransport
      peer.socket.send(`<close xmlns='${FRAMING}' see-other-uri='${s.url('/elsewhere')}'/>`)
      await disconnected
      expect(transport.seeOtherUri).toBe(s.url('/elsewhere'))
      expect(conn.state).toBe('disconnected')
    })
  })

  test('a server that never answers the handshake: the connect timeout ends the attempt', async () => {
    const { createServer } = await import('node:net')
    const silent = createServer(() => undefined)
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const port = (silent.address() as { port: number }).port
    try {
      const conn = createConnection({
        transport: websocket(options()),
        service: `ws://127.0.0.1:${port}/`,
        domain: 'localhost',
        timeouts: { ...SHORT, connect: 200 },
      })
      const error = await conn.connect().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(TimeoutError)
      expect(conn.state).toBe('disconnected')
    } finally {
      silent.close()
    }
  })

  test('a refused connection: WebSocketError connect-failed', async () => {
    const s = await server()
    const url = s.url()
    await s.close()
    servers.length = 0
    const error = await connection(url)
      .connect()
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(error).toBeInstanceOf(WebSocketError)
    expect(error).toMatchObject({ code: 'connect-failed' })
  })
})

test.skipIf(typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'function')(
  'the ws package (Node 20) refuses a message over maxMessageBytes: closed (1009 to the server)',
  async () => {
    const s = await server()
    const conn = createConnection({
      transport: websocket({ maxMessageBytes: 1024 }),
      service: s.url(),
      domain: 'localhost',
      timeouts: SHORT,
    })
    const connecting = conn.connect()
    const peer = await s.nextPeer()
    await peer.nextMessage()
    peer.socket.send(serverOpen())
    peer.socket.send(NO_FEATURES)
    await connecting
    const disconnected = conn.hooks.next('disconnected')
    peer.socket.send(`<message xmlns='jabber:client'><body>${'x'.repeat(2048)}</body></message>`)
    const { error, reason } = await disconnected
    expect(error).toMatchObject({ code: 'closed' })
    expect(((error as Error).cause as Error).message).toMatch(/max payload/i)
    expect(reason).toBe('dropped')
    // RFC 6455 §7.4.1: 1009, a message too big to process.
    expect(await peer.closed).toBe(1009)
  },
)

describe('where it may connect', () => {
  const attempt = (service: string | undefined, options: WebSocketOptions = {}) =>
    createConnection({
      transport: websocket(options),
      ...(service === undefined ? {} : { service }),
      domain: 'example.com',
      timeouts: SHORT,
    })
      .connect()
      .then(
        () => undefined,
        (e: unknown) => e,
      )

  test('ws:// to a host that is not loopback: plaintext-refused, no connection attempted', async () => {
    let constructed = 0
    const Spy = class {
      constructor() {
        constructed++
        throw new Error('must not be reached')
      }
    } as unknown as WebSocketConstructor
    const error = await attempt('ws://example.com/xmpp-websocket', { WebSocket: Spy })
    expect(error).toBeInstanceOf(WebSocketError)
    expect(error).toMatchObject({ code: 'plaintext-refused' })
    expect(constructed).toBe(0)
  })

  test('ws:// elsewhere with allowPlaintext: the connection is attempted', async () => {
    const urls: string[] = []
    const Spy = class {
      constructor(url: string) {
        urls.push(url)
        throw new Error('no network in this test')
      }
    } as unknown as WebSocketConstructor
    const error = await attempt('ws://example.com/xmpp-websocket', {
      WebSocket: Spy,
      allowPlaintext: true,
    })
    expect(error).toMatchObject({ code: 'connect-failed' })
    expect(urls).toEqual(['ws://example.com/xmpp-websocket'])
  })

  test.each([
    ['xmpp://example.com'],
    ['https://example.com/xmpp-websocket'],
    ['wss://example.com/ws#fragment'],
    ['not a url'],
  ])('service %s: invalid-service', async (service) => {
    const error = await attempt(service)
    expect(error).toBeInstanceOf(WebSocketError)
    expect(error).toMatchObject({ code: 'invalid-service' })
  })

  test('a WebSocket that opens without the xmpp subprotocol is closed: subprotocol', async () => {
    const closed: number[] = []
    const sent: string[] = []
    const Opens = class extends EventTarget {
      protocol = ''
      readyState = 0
      bufferedAmount = 0
      binaryType = 'blob'
      constructor() {
        super()
        setTimeout(() => {
          this.readyState = 1
          this.dispatchEvent(new Event('open'))
        }, 1)
      }
      send(data: string) {
        sent.push(data)
      }
      close(code: number) {
        closed.push(code)
        this.readyState = 3
      }
    } as unknown as WebSocketConstructor
    const error = await attempt('ws://127.0.0.1:9/', { WebSocket: Opens })
    expect(error).toBeInstanceOf(WebSocketError)
    expect(error).toMatchObject({ code: 'subprotocol' })
    expect(closed).toEqual([1000])
    expect(sent).toEqual([])
  })

  test('no service and no discovery: invalid-service', async () => {
    const error = await attempt(undefined, { discovery: false })
    expect(error).toBeInstanceOf(WebSocketError)
    expect(error).toMatchObject({ code: 'invalid-service' })
  })

  test('no service: nothing is looked up unless discovery is given (no fetch)', async () => {
    const fetched: unknown[] = []
    const saved = globalThis.fetch
    globalThis.fetch = (async (...args: unknown[]) => {
      fetched.push(args[0])
      throw new Error('no network in this test')
    }) as typeof fetch
    try {
      const error = await attempt(undefined)
      expect(error).toBeInstanceOf(WebSocketError)
      expect(error).toMatchObject({ code: 'invalid-service' })
      expect((error as Error).message).toContain('discovery')
    } finally {
      globalThis.fetch = saved
    }
    expect(fetched).toEqual([])
  })

  test('options are checked when the factory is made', () => {
    expect(() => websocket({ maxRedirects: -1 })).toThrow(TypeError)
    expect(() => websocket({ maxMessageBytes: 0 })).toThrow(TypeError)
  })
})

describe('wss: certificates are verified', () => {
  /** The `ws` package's WebSocket trusting the test CA (what a caller may inject). */
  const TrustingTestCa = class extends WsPackageWebSocket {
    constructor(url: string, protocols: string[]) {
      super(url, protocols, { ca: testCerts.ca })
    }
  } as unknown as WebSocketConstructor

  test('a certificate no CA vouches for: connect-failed, nothing sent', async () => {
    const s = await server({ tls: { cert: testCerts.cert, key: testCerts.key } })
    // The default WebSocket (the ws package on Node 20, Node's own later) with the
    // platform's CAs: the test CA is not among them.
    const conn = createConnection({
      transport: websocket(),
      service: s.url(),
      domain: 'localhost',
      timeouts: SHORT,
    })
    const error = await conn.connect().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(WebSocketError)
    expect(error).toMatchObject({ code: 'connect-failed' })
    // The ws package says why; Node's own WebSocket does not, but the server saw the client
    // give up during the TLS handshake, before any HTTP request.
    if (typeof (globalThis as { WebSocket?: unknown }).WebSocket !== 'function') {
      expect((error as Error).message).toMatch(/certificate/i)
    }
    await expect.poll(() => s.tlsErrors.length).toBe(1)
    expect(s.peers).toEqual([])
  })

  test('trusted: online over wss, secure and verified; a redirect to ws:// is refused', async () => {
    const s = await server({
      tls: { cert: testCerts.cert, key: testCerts.key },
      onPeer: (peer) => {
        void peer.nextMessage().then(() => {
          peer.socket.send(`<close xmlns='${FRAMING}' see-other-uri='ws://127.0.0.1:9/xmpp'/>`)
        })
      },
    })
    const conn = createConnection({
      transport: websocket({ WebSocket: TrustingTestCa }),
      service: s.url(),
      domain: 'localhost',
      timeouts: SHORT,
    })
    const transports: WebSocketTransport[] = []
    conn.hooks.on('state', ({ state }) => {
      if (state === 'negotiating') transports.push(conn.transport as WebSocketTransport)
    })
    const error = await conn.connect().then(
      () => undefined,
      (e: unknown) => e,
    )
    // The TLS connection itself was up and verified before the redirect came.
    expect(transports[0]?.secure).toBe(true)
    expect(transports[0]?.verified).toBe(true)
    expect(error).toBeInstanceOf(WebSocketError)
    expect(error).toMatchObject({ code: 'redirect-refused' })
    expect((error as Error).message).toContain('drop TLS')
  })
})

describe('flow control', () => {
  /** A WHATWG-shaped WebSocket under the test's control (no pause, a settable buffer). */
  function fakeSocket() {
    const made: Fake[] = []
    class Fake extends EventTarget {
      protocol = 'xmpp'
      readyState = 0
      bufferedAmount = 0
      binaryType = 'blob'
      sent: string[] = []
      constructor() {
        super()
        made.push(this)
        setTimeout(() => {
          this.readyState = 1
          this.dispatchEvent(new Event('open'))
        }, 1)
      }
      send(data: string) {
        this.sent.push(data)
      }
      close() {
        this.readyState = 3
        const event = Object.assign(new Event('close'), { code: 1000, reason: '' })
        setTimeout(() => this.dispatchEvent(event), 1)
      }
      receive(data: string) {
        this.dispatchEvent(Object.assign(new Event('message'), { data }))
      }
    }
    return { Impl: Fake as unknown as WebSocketConstructor, made }
  }

  async function connected() {
    const { Impl, made } = fakeSocket()
    const transport = new WebSocketTransport({ WebSocket: Impl })
    const got: (string | Uint8Array)[] = []
    let drains = 0
    await transport.connect(
      {
        service: 'ws://127.0.0.1:1/',
        domain: 'localhost',
        signal: new AbortController().signal,
      },
      { data: (d) => got.push(d), close: () => undefined, drain: () => drains++ },
    )
    return { transport, socket: made[0] as (typeof made)[number], got, drains: () => drains }
  }

  test('write() reports a full buffer, and drain follows once it is low again', async () => {
    const { transport, socket, drains } = await connected()
    expect(transport.write('<a/>')).toBe(true)
    socket.bufferedAmount = 2 * 1024 * 1024
    expect(transport.write('<b/>')).toBe(false)
    expect(socket.sent).toEqual(['<a/>', '<b/>'])
    await new Promise((resolve) => setTimeout(resolve, 30))
    expect(drains()).toBe(0)
    socket.bufferedAmount = 0
    await new Promise((resolve) => setTimeout(resolve, 30))
    expect(drains()).toBe(1)
    transport.destroy()
  })

  test('paused, a WebSocket that cannot pause has its messages held, in order, until resume()', async () => {
    const { transport, socket, got } = await connected()
    socket.receive('<one/>')
    transport.pause()
    socket.receive('<two/>')
    socket.receive('<three/>')
    expect(got).toEqual(['<one/>'])
    transport.resume()
    expect(got).toEqual(['<one/>', '<two/>', '<three/>'])
    transport.destroy()
  })

  test('held while paused, past 4 MiB: the connection ends with inbound-limit', async () => {
    const { transport, socket, got } = await connected()
    transport.pause()
    const big = `<message xmlns='jabber:client'><body>${'x'.repeat(1_048_576)}</body></message>`
    for (let i = 0; i < 5; i++) socket.receive(big)
    const error = await transport.closed
    expect(error).toBeInstanceOf(WebSocketError)
    expect(error).toMatchObject({ code: 'inbound-limit' })
    await new Promise((resolve) => setTimeout(resolve, 10))
    expect(got).toEqual([])
  })
})

describe('endpoint discovery (XEP-0156)', () => {
  test('without a service, the wss endpoint the domain announces is used', async () => {
    const s = await server({ tls: { cert: testCerts.cert, key: testCerts.key } })
    const asked: string[] = []
    const conn = createConnection({
      transport: websocket({
        WebSocket: class extends WsPackageWebSocket {
          constructor(url: string, protocols: string[]) {
            super(url, protocols, { ca: testCerts.ca })
          }
        } as unknown as WebSocketConstructor,
        discovery: hostMeta({
          fetch: async (url) => {
            asked.push(url)
            return {
              ok: true,
              url,
              text: async () =>
                JSON.stringify({
                  links: [{ rel: 'urn:xmpp:alt-connections:websocket', href: s.url('/found') }],
                }),
            }
          },
        }),
      }),
      domain: 'localhost',
      timeouts: SHORT,
    })
    const connecting = conn.connect()
    const peer = await s.nextPeer()
    expect(await peer.nextMessage()).toBe(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`)
    peer.socket.send(serverOpen())
    peer.socket.send(NO_FEATURES)
    await connecting
    expect(asked).toEqual(['https://localhost/.well-known/host-meta.json'])
    expect((conn.transport as WebSocketTransport).url).toBe(s.url('/found'))
    expect(conn.transport?.secure).toBe(true)
  })

  test('a domain that announces nothing: invalid-service', async () => {
    const conn = createConnection({
      transport: websocket({
        discovery: hostMeta({ fetch: async (url) => ({ ok: false, url, text: async () => '' }) }),
      }),
      domain: 'example.com',
      timeouts: SHORT,
    })
    const error = await conn.connect().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(WebSocketError)
    expect(error).toMatchObject({ code: 'invalid-service' })
    expect((error as Error).message).toContain('example.com')
  })

  test('a discovered ws: endpoint is checked like a service: plaintext-refused', async () => {
    const conn = createConnection({
      transport: websocket({ discovery: async () => ['ws://example.com/xmpp-websocket'] }),
      domain: 'example.com',
      timeouts: SHORT,
    })
    const error = await conn.connect().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(WebSocketError)
    expect(error).toMatchObject({ code: 'plaintext-refused' })
  })
})
