// tcp() with SASL and bind and no starttls plugin: the transport alone must keep credentials
// off an unencrypted stream. Here rather than in @transport/tcp: this package depends on all
// three (a dev dependency of the transport on SASL would make a cycle with bind's tests).
import { bind } from '@client/bind'
import { sasl } from '@client/sasl'
import { createConnection } from '@core/connection'
import { startTestServer, type TestServerOptions } from '@test/server'
import { type TcpOptions, TLSError, tcp } from '@transport/tcp'
import { describe, expect, it } from 'vitest'

/** Resolves with the rejection of `promise`, 'resolved', or a marker after `ms` (a hang guard). */
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

describe('TLS enforced by the transport, whatever the plugins', () => {
  /** tcp() with SASL and bind and no starttls plugin: nothing but the transport checks. */
  async function loginWithoutStarttls(options: TestServerOptions, tcpOptions: TcpOptions = {}) {
    const plain = await startTestServer({ users: { juliet: 'r0m30' }, ...options })
    try {
      const conn = createConnection({
        transport: tcp(tcpOptions),
        service: plain.service,
        domain: plain.domain,
        plugins: [sasl.with({ username: 'juliet', password: 'r0m30' }), bind],
        timeouts: { negotiation: 2000, close: 200 },
      })
      const error = await outcome(conn.connect())
      const session = plain.sessions[0]
      const received = session?.received.map((e) => e.name) ?? []
      const state = conn.state
      if (state === 'online') await conn.disconnect()
      return { error, received, state, plain, session }
    } finally {
      await plain.close()
    }
  }

  it('a server without STARTTLS: no <auth/> leaves, TLSError tls-required', async () => {
    const { error, received, state, plain } = await loginWithoutStarttls({ tls: false })
    expect(error).toBeInstanceOf(TLSError)
    expect(error).toMatchObject({ code: 'tls-required' })
    expect((error as Error).message).toMatch(/refused to send <auth\/> to localhost/)
    expect(state).toBe('disconnected')
    // What the server saw: a stream header and nothing else.
    expect(received).toEqual([])
    expect(plain.log.some((e) => e.type === 'auth')).toBe(false)
  })

  it('a server offering STARTTLS (not required) to a client without the plugin: refused too', async () => {
    const { error, received } = await loginWithoutStarttls({ requireTls: false })
    expect(error).toMatchObject({ code: 'tls-required' })
    expect(received).toEqual([])
  })

  it('tcp({ allowPlaintext: true }) lets the same login through in the clear', async () => {
    const { error, state, session } = await loginWithoutStarttls(
      { tls: false },
      { allowPlaintext: true },
    )
    expect(error).toBe('resolved')
    expect(state).toBe('online')
    expect(session?.tls).toBe(false)
    expect(session?.jid?.bare().toString()).toBe('juliet@localhost')
  })
})
