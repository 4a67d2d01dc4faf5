import { createConnection, type TransportEvents } from '@core/connection'
import { TimeoutError } from '@core/errors'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  type SrvRecord,
  type SrvResolver,
  TcpError,
  TcpTransport,
  TLSError,
  tcp,
} from '../src/index.js'
import { certs, closedPort, onlyTlsRecords, Peer, serverTls, settle } from './peer.js'

function recorder() {
  const seen = {
    chunks: [] as (Uint8Array | string)[],
    closes: [] as (Error | undefined)[],
    drains: 0,
  }
  const events: TransportEvents = {
    data: (chunk) => seen.chunks.push(chunk),
    close: (error) => seen.closes.push(error),
    drain: () => {
      seen.drains++
    },
  }
  return { seen, events }
}

function target(fields: { service?: string; domain?: string; host?: string; port?: number }) {
  const controller = new AbortController()
  return {
    controller,
    target: {
      service: fields.service,
      domain: fields.domain ?? 'localhost',
      host: fields.host,
      port: fields.port,
      signal: controller.signal,
    },
  }
}

const dnsError = (code: string) => Object.assign(new Error(code), { code })

function resolverFor(table: Record<string, SrvRecord[]>): SrvResolver & { asked: string[] } {
  const asked: string[] = []
  return Object.assign(
    async (name: string) => {
      asked.push(name)
      const records = table[name]
      if (!records) throw dnsError('ENOTFOUND')
      return records
    },
    { asked },
  )
}

const turn = () => new Promise((resolve) => setImmediate(resolve))

let peer: Peer
beforeEach(async () => {
  peer = await Peer.listen()
})
afterEach(async () => {
  await peer.close()
})

describe('TcpTransport data path', () => {
  it('hands received bytes over unchanged, as Buffers', async () => {
    const transport = new TcpTransport()
    const { seen, events } = recorder()
    const { target: t } = target({ service: `xmpp://127.0.0.1:${peer.port}` })
    await transport.connect(t, events)
    expect(transport.secure).toBe(false)
    expect(transport.remote).toEqual({ host: '127.0.0.1', port: peer.port, tls: 'starttls' })
    const server = await peer.nextPeer()
    // '€' split across two writes: the transport must not decode.
    server.raw.write(Buffer.from([0xe2, 0x82]))
    await expect.poll(() => seen.chunks.length).toBe(1)
    server.raw.write(Buffer.from([0xac]))
    await expect.poll(() => seen.chunks.length).toBe(2)
    for (const chunk of seen.chunks) expect(Buffer.isBuffer(chunk)).toBe(true)
    expect(Buffer.concat(seen.chunks as Buffer[])).toEqual(Buffer.from('€'))
    transport.destroy()
  })

  it('returns the socket backpressure from write() and reports drain', async () => {
    // Raw data, not XMPP: plaintext is allowed here (see 'refuses plaintext' below).
    const transport = new TcpTransport({ allowPlaintext: true })
    const { seen, events } = recorder()
    await transport.connect(target({ service: `xmpp://127.0.0.1:${peer.port}` }).target, events)
    const server = await peer.nextPeer()
    server.raw.pause()
    const block = 'x'.repeat(1 << 20)
    let writes = 0
    let ok = true
    while (ok && writes < 256) {
      ok = transport.write(block)
      writes++
    }
    expect(ok).toBe(false)
    expect(seen.drains).toBe(0)
    server.raw.resume()
    await expect.poll(() => seen.drains, { timeout: 5_000 }).toBeGreaterThan(0)
    await expect
      .poll(() => server.rawIn.reduce((n, b) => n + b.length, 0), { timeout: 5_000 })
      .toBe(writes * block.length)
    transport.destroy()
  })

  it('pauses and resumes reading', async () => {
    const transport = new TcpTransport()
    const { seen, events } = recorder()
    await transport.connect(target({ service: `xmpp://127.0.0.1:${peer.port}` }).target, events)
    const server = await peer.nextPeer()
    transport.pause()
    server.raw.write('abc')
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(seen.chunks).toEqual([])
    transport.resume()
    await expect.poll(() => Buffer.concat(seen.chunks as Buffer[]).toString()).toBe('abc')
    transport.destroy()
  })

  it('two transports, whose socket listeners are shared, each get their own data and close', async () => {
    const a = new TcpTransport({ allowPlaintext: true })
    const b = new TcpTransport({ allowPlaintext: true })
    const ra = recorder()
    const rb = recorder()
    await a.connect(target({ service: `xmpp://127.0.0.1:${peer.port}` }).target, ra.events)
    const serverA = await peer.nextPeer()
    await b.connect(target({ service: `xmpp://127.0.0.1:${peer.port}` }).target, rb.events)
    const serverB = await peer.nextPeer()
    const closedA = a.closed
    serverA.raw.write('to a')
    serverB.raw.write('to b')
    await expect.poll(() => Buffer.concat(ra.seen.chunks as Buffer[]).toString()).toBe('to a')
    await expect.poll(() => Buffer.concat(rb.seen.chunks as Buffer[]).toString()).toBe('to b')
    serverA.raw.end()
    expect(await closedA).toBeUndefined()
    await expect.poll(() => ra.seen.closes.length).toBe(1)
    expect(rb.seen.closes).toEqual([])
    expect(b.write('still open')).toBe(true)
    b.destroy()
  })

  it('reports the close exactly once', async () => {
    const transport = new TcpTransport()
    const { seen, events } = recorder()
    await transport.connect(target({ service: `xmpp://127.0.0.1:${peer.port}` }).target, events)
    const server = await peer.nextPeer()
    server.raw.end()
    await expect.poll(() => seen.closes.length).toBe(1)
    expect(seen.closes[0]).toBeUndefined()
    expect(await transport.closed).toBeUndefined()
    transport.destroy()
    transport.end()
    await turn()
    await turn()
    expect(seen.closes.length).toBe(1)
    expect(transport.write('late')).toBe(false)
  })

  it('destroy(error) closes at once and reports that error once', async () => {
    const transport = new TcpTransport()
    const { seen, events } = recorder()
    await transport.connect(target({ service: `xmpp://127.0.0.1:${peer.port}` }).target, events)
    const server = await peer.nextPeer()
    const error = new Error('gone')
    transport.destroy(error)
    transport.destroy()
    await server.closed
    await expect.poll(() => seen.closes).toEqual([error])
  })

  it('end() flushes what was written, then closes', async () => {
    const transport = new TcpTransport({ allowPlaintext: true })
    const { seen, events } = recorder()
    await transport.connect(target({ service: `xmpp://127.0.0.1:${peer.port}` }).target, events)
    const server = await peer.nextPeer()
    transport.write('<last/>')
    transport.end()
    await server.closed
    expect(Buffer.concat(server.rawIn).toString()).toBe('<last/>')
    await expect.poll(() => seen.closes.length).toBe(1)
  })
})

describe('TcpTransport refuses plaintext unless allowed', () => {
  it('writes nothing of a refused chunk and closes with TLSError tls-required', async () => {
    const transport = new TcpTransport()
    const { seen, events } = recorder()
    await transport.connect(target({ service: `xmpp://127.0.0.1:${peer.port}` }).target, events)
    const server = await peer.nextPeer()
    const open =
      "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    expect(transport.write(open)).toBe(true)
    expect(transport.write("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>c2VjcmV0</auth>")).toBe(
      false,
    )
    await server.closed
    expect(Buffer.concat(server.rawIn).toString()).toBe(open)
    await expect.poll(() => seen.closes.length).toBe(1)
    expect(seen.closes[0]).toBeInstanceOf(TLSError)
    expect(seen.closes[0]).toMatchObject({ code: 'tls-required' })
  })
})

describe('TcpTransport targets', () => {
  it('connects to a redirect host and port rather than the service', async () => {
    const transport = new TcpTransport()
    const unused = await closedPort()
    const { target: t } = target({
      service: `xmpps://127.0.0.1:${unused}`,
      host: '127.0.0.1',
      port: peer.port,
    })
    await transport.connect(t, recorder().events)
    expect(transport.remote).toEqual({ host: '127.0.0.1', port: peer.port, tls: 'starttls' })
    expect(transport.secure).toBe(false)
    await peer.nextPeer()
    transport.destroy()
  })

  it('looks up SRV for the domain and tries the targets in order', async () => {
    const dead = await closedPort()
    const resolver = resolverFor({
      '_xmpp-client._tcp.example.test': [
        { name: '127.0.0.1', port: peer.port, priority: 10, weight: 0 },
        { name: '127.0.0.1', port: dead, priority: 5, weight: 0 },
      ],
    })
    const transport = new TcpTransport({ resolver })
    await transport.connect(target({ domain: 'example.test' }).target, recorder().events)
    expect(resolver.asked.sort()).toEqual([
      '_xmpp-client._tcp.example.test',
      '_xmpps-client._tcp.example.test',
    ])
    expect(transport.remote?.port).toBe(peer.port)
    await peer.nextPeer()
    transport.destroy()
  })

  it('fails with connect-failed when every SRV target fails, without the fallback', async () => {
    const [a, b] = [await closedPort(), await closedPort()]
    const resolver = resolverFor({
      '_xmpp-client._tcp.example.test': [
        { name: '127.0.0.1', port: a, priority: 0, weight: 0 },
        { name: '127.0.0.1', port: b, priority: 1, weight: 0 },
      ],
    })
    const transport = new TcpTransport({ resolver })
    const { seen, events } = recorder()
    const result = await settle(
      transport.connect(
        target({ service: 'xmpp://example.test', domain: 'example.test' }).target,
        events,
      ),
    )
    const error = (result as { error: TcpError }).error
    expect(error).toBeInstanceOf(TcpError)
    expect(error.code).toBe('connect-failed')
    expect(error.message).toContain(`127.0.0.1:${a}`)
    expect(error.message).toContain(`127.0.0.1:${b}`)
    expect(error.message).not.toContain(':5222')
    expect(error.cause).toBeInstanceOf(AggregateError)
    await expect.poll(() => seen.closes.length).toBe(1)
  })

  it('verifies direct TLS against the domain, not the SRV target', async () => {
    const direct = await Peer.listen({ directTls: serverTls })
    try {
      const records = (domain: string) => ({
        [`_xmpps-client._tcp.${domain}`]: [
          { name: '127.0.0.1', port: direct.port, priority: 0, weight: 0 },
        ],
      })
      // example.com is in the certificate: it connects, with SNI example.com.
      const good = new TcpTransport({
        resolver: resolverFor(records('example.com')),
        tls: { ca: certs.ca },
      })
      await good.connect(target({ domain: 'example.com' }).target, recorder().events)
      expect(good.secure).toBe(true)
      expect(good.remote?.tls).toBe('direct')
      const server = await direct.nextPeer()
      await server.handshake
      expect(server.tls?.servername).toBe('example.com')
      good.destroy()
      // 127.0.0.1 is in the certificate too, but the domain wrong.test is not.
      const bad = new TcpTransport({
        resolver: resolverFor(records('wrong.test')),
        tls: { ca: certs.ca },
      })
      const result = await settle(
        bad.connect(target({ domain: 'wrong.test' }).target, recorder().events),
      )
      const error = (result as { error: TLSError }).error
      expect(error).toBeInstanceOf(TLSError)
      expect(error.code).toBe('certificate')
      expect(bad.secure).toBe(false)
    } finally {
      await direct.close()
    }
  })
})

describe('TcpTransport cancellation', () => {
  // The peer never answers the ClientHello: a direct TLS connect hangs until stopped.
  it('stops on abort: destroys the socket and rejects with the reason', async () => {
    const transport = new TcpTransport({ tls: { ca: certs.ca } })
    const { controller, target: t } = target({ service: `xmpps://127.0.0.1:${peer.port}` })
    const connecting = settle(transport.connect(t, recorder().events))
    const server = await peer.nextPeer()
    const reason = new Error('stop')
    controller.abort(reason)
    expect(await connecting).toEqual({ error: reason })
    await server.closed
  })

  it('gives up on a target after connectTimeout', async () => {
    const transport = new TcpTransport({ connectTimeout: 100 })
    const result = await settle(
      transport.connect(
        target({ service: `xmpps://127.0.0.1:${peer.port}` }).target,
        recorder().events,
      ),
    )
    const error = (result as { error: TcpError }).error
    expect(error).toBeInstanceOf(TcpError)
    expect(error.code).toBe('connect-failed')
    expect(error.cause).toBeInstanceOf(TimeoutError)
    await (await peer.nextPeer()).closed
  })

  it('destroy() during connect rejects it', async () => {
    const transport = new TcpTransport()
    const { seen, events } = recorder()
    const connecting = settle(
      transport.connect(target({ service: `xmpps://127.0.0.1:${peer.port}` }).target, events),
    )
    const server = await peer.nextPeer()
    transport.destroy()
    expect(await connecting).toHaveProperty('error')
    await server.closed
    await expect.poll(() => seen.closes.length).toBe(1)
  })

  // The connection gives up on an attempt with end(), and passes no signal.
  it('end() during connect rejects it too', async () => {
    const transport = new TcpTransport()
    const { seen, events } = recorder()
    const connecting = settle(
      transport.connect(target({ service: `xmpps://127.0.0.1:${peer.port}` }).target, events),
    )
    const server = await peer.nextPeer()
    transport.end()
    expect(await connecting).toHaveProperty('error')
    await server.closed
    await expect.poll(() => seen.closes.length).toBe(1)
  })

  // The transport contract has one cancellation mechanism: the attempt's AbortSignal.
  it('stops when target.signal aborts, with its reason', async () => {
    const transport = new TcpTransport({ tls: { ca: certs.ca } })
    const controller = new AbortController()
    const t = {
      service: `xmpps://127.0.0.1:${peer.port}`,
      domain: 'localhost',
      signal: controller.signal,
    }
    const connecting = settle(transport.connect(t, recorder().events))
    const server = await peer.nextPeer()
    const reason = new Error('gave up')
    controller.abort(reason)
    expect(await connecting).toEqual({ error: reason })
    await server.closed
  })
})

// A Connection passes no AbortSignal: it stops a connect in flight with end().
describe('a Connection stops a TcpTransport connect in flight', () => {
  it('during the SRV lookup: connect() rejects with the cause and no socket is opened', async () => {
    const asked: string[] = []
    const answers: ((records: SrvRecord[]) => void)[] = []
    const resolver: SrvResolver = (name) => {
      asked.push(name)
      return new Promise((resolve) => answers.push(resolve))
    }
    const conn = createConnection({ transport: tcp({ resolver }), domain: 'example.com' })
    const connecting = settle(conn.connect())
    await expect.poll(() => asked.length).toBe(2)
    await conn.disconnect()
    expect(await connecting).toMatchObject({ error: { code: 'stopped' } })
    // The lookup answers late: nothing connects to what it names.
    for (const answer of answers)
      answer([{ name: '127.0.0.1', port: peer.port, priority: 0, weight: 0 }])
    await turn()
    await turn()
    expect(peer.connections).toHaveLength(0)
    expect(conn.state).toBe('disconnected')
  })

  it('during the socket connect (a silent TLS peer): the connect timeout closes the socket', async () => {
    const conn = createConnection({
      transport: tcp({ tls: { ca: certs.ca }, connectTimeout: 0 }),
      domain: 'localhost',
      service: `xmpps://127.0.0.1:${peer.port}`,
      timeouts: { connect: 150 },
    })
    const connecting = settle(conn.connect())
    const server = await peer.nextPeer()
    const { error } = (await connecting) as { error: TimeoutError }
    expect(error).toBeInstanceOf(TimeoutError)
    expect(error.step).toBe('connect')
    await server.closed
  })

  it('during the socket connect: disconnect() rejects connect() with stopped and closes it', async () => {
    const conn = createConnection({
      transport: tcp({ tls: { ca: certs.ca } }),
      domain: 'localhost',
      service: `xmpps://127.0.0.1:${peer.port}`,
    })
    const connecting = settle(conn.connect())
    const server = await peer.nextPeer()
    await conn.disconnect()
    expect(await connecting).toMatchObject({ error: { code: 'stopped' } })
    await server.closed
  })
})

describe('TcpTransport.startTls', () => {
  it('holds writes made during the handshake and sends them encrypted', async () => {
    const transport = new TcpTransport({ tls: { ca: certs.ca } })
    const { seen, events } = recorder()
    await transport.connect(target({ service: `xmpp://127.0.0.1:${peer.port}` }).target, events)
    const server = await peer.nextPeer()
    const upgrading = settle(transport.startTls())
    expect(transport.write('<secret/>')).toBe(false)
    await server.startTls(serverTls)
    expect(await upgrading).toEqual({ value: undefined })
    expect(transport.secure).toBe(true)
    await expect.poll(() => Buffer.concat(server.tlsIn).toString()).toBe('<secret/>')
    expect(seen.drains).toBe(1)
    expect(onlyTlsRecords(Buffer.concat(server.rawAfterTls))).toBe(true)
    // STARTTLS over TLS is refused.
    const again = await settle(transport.startTls())
    expect((again as { error: TLSError }).error.code).toBe('starttls-failed')
    transport.destroy()
  })

  it('reports a drop during the handshake as a TLSError, then closes once', async () => {
    const transport = new TcpTransport({ tls: { ca: certs.ca } })
    const { seen, events } = recorder()
    await transport.connect(target({ service: `xmpp://127.0.0.1:${peer.port}` }).target, events)
    const server = await peer.nextPeer()
    const upgrading = settle(transport.startTls())
    server.destroy()
    const error = ((await upgrading) as { error: TLSError }).error
    expect(error).toBeInstanceOf(TLSError)
    expect(error.code).toBe('tls-handshake')
    expect(transport.secure).toBe(false)
    await expect.poll(() => seen.closes.length).toBe(1)
  })
})
