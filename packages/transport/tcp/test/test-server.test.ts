// The transport and the starttls plugin against @test/server and its faults.
import { createConnection } from '@core/connection'
import { TimeoutError } from '@core/errors'
import { startTestServer, type TestServer, testCerts } from '@test/server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { starttls, type TcpOptions, TLSError, tcp } from '../src/index.js'

let server: TestServer
beforeAll(async () => {
  server = await startTestServer({ users: { juliet: 'r0m30' } })
})
afterAll(async () => {
  await server.close()
})

/** Resolves with the rejection of `promise`, or with a marker after `ms` (a hang guard). */
function outcome(promise: Promise<unknown>, ms = 10_000): Promise<unknown> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('still pending'), ms)
    promise.then(
      () => {
        clearTimeout(timer)
        resolve('resolved')
      },
      (error: unknown) => {
        clearTimeout(timer)
        resolve(error)
      },
    )
  })
}

describe('deadlines', () => {
  it('proceed, then silence: the TLS handshake times out with a TimeoutError naming it', async () => {
    server.faults = { silenceAfterProceed: true, once: true }
    const conn = createConnection({
      transport: tcp({ tls: { ca: server.certs.ca }, handshakeTimeout: 300 }),
      service: server.service,
      domain: server.domain,
      plugins: [starttls],
      timeouts: { connect: 2000, negotiation: 2000, close: 200 },
    })
    const error = await outcome(conn.connect())
    expect(error).toBeInstanceOf(TimeoutError)
    expect(error).toMatchObject({ code: 'timeout' })
    expect((error as Error).message).toMatch(/TLS handshake/)
    expect(conn.state).toBe('disconnected')
    // The server answered <proceed/> and then heard only the client's TLS hello.
    expect((await server.waitFor('fault')).fault).toBe('silenceAfterProceed')
    await server.waitFor('close', (e) => e.session === server.sessions.at(-1))
  })
})

describe('deadlines of the starttls plugin', () => {
  it('a <starttls/> never answered: a TimeoutError that names <starttls/>', async () => {
    server.faults = { withhold: 'starttls', once: true }
    const conn = createConnection({
      transport: tcp({ tls: { ca: server.certs.ca } }),
      service: server.service,
      domain: server.domain,
      plugins: [starttls],
      timeouts: { negotiation: 300, close: 200 },
    })
    const error = await outcome(conn.connect())
    expect(error).toBeInstanceOf(TimeoutError)
    expect((error as Error).message).toMatch(/^no answer to <starttls\/> from localhost: /)
    expect(conn.state).toBe('disconnected')
  })

  it('handshakeTimeout must be a positive number of milliseconds', () => {
    expect(() => tcp({ handshakeTimeout: 0 })).toThrow(TypeError)
    expect(() => tcp({ handshakeTimeout: Number.NaN })).toThrow(TypeError)
    expect(() => tcp({ connectTimeout: -1 })).toThrow(TypeError)
  })
})

describe('trusted CAs against the test server', () => {
  async function connectWith(tls: NonNullable<TcpOptions['tls']>) {
    const conn = createConnection({
      transport: tcp({ tls }),
      service: server.service,
      domain: server.domain,
      plugins: [starttls],
      timeouts: { negotiation: 2000, close: 200 },
    })
    const error = await outcome(conn.connect())
    const secure = conn.transport?.secure
    if (conn.state === 'online') await conn.disconnect()
    return { error, secure }
  }

  it('extraCa: the test CA added to the default roots verifies the server', async () => {
    expect(await connectWith({ extraCa: server.certs.ca })).toEqual({
      error: 'resolved',
      secure: true,
    })
  })

  it('ca or extraCa with another CA: the certificate does not verify', async () => {
    for (const tls of [{ ca: testCerts.selfSigned.cert }, { extraCa: testCerts.selfSigned.cert }]) {
      const { error } = await connectWith(tls)
      expect(error).toBeInstanceOf(TLSError)
      expect(error).toMatchObject({ code: 'certificate' })
    }
  })
})
