// The whole login over WebSocket: SASL SCRAM (with its stream restart) and resource binding,
// against @test/server's real logic through its WebSocket front.
import { bind } from '@client/bind'
import { sasl } from '@client/sasl'
import { createConnection } from '@core/connection'
import { SASLError } from '@core/errors'
import { xml } from '@core/xml'
import { startTestServer, type TestServer } from '@test/server'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { WebSocket as WsPackageWebSocket } from 'ws'
import { type WebSocketConstructor, WebSocketTransport, websocket } from '../src/index.js'

let server: TestServer
beforeAll(async () => {
  server = await startTestServer({
    users: { juliet: 'r0m30', romeo: 'j4l13t' },
    tls: false,
    websocket: true,
  })
})
afterAll(async () => {
  await server.close()
})

const IMPLEMENTATIONS: [string, WebSocketConstructor | undefined][] = [
  ['ws package', WsPackageWebSocket as unknown as WebSocketConstructor],
]
if (typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'function') {
  IMPLEMENTATIONS.push(['globalThis.WebSocket', undefined])
}

describe.each(IMPLEMENTATIONS)('over %s', (_name, Impl) => {
  function client(username: string, password: string, mechanisms?: string[]) {
    return createConnection({
      transport: websocket(Impl ? { WebSocket: Impl } : {}),
      service: server.websocketUrl as string,
      domain: server.domain,
      plugins: [
        sasl.with({ username, password, ...(mechanisms ? { mechanisms } : {}) }),
        bind.with({ resource: 'ws' }),
      ],
      timeouts: { negotiation: 3000, close: 500 },
    })
  }

  test.each([['SCRAM-SHA-256'], ['SCRAM-SHA-1']])(
    'logs in with %s and binds; messages go both ways',
    async (mechanism) => {
      const juliet = client('juliet', 'r0m30', [mechanism])
      await juliet.connect()
      expect(juliet.state).toBe('online')
      expect(juliet.transport).toBeInstanceOf(WebSocketTransport)
      expect(juliet.plugins.sasl.mechanism).toBe(mechanism)
      expect(juliet.jid?.toString()).toBe('juliet@localhost/ws')
      const session = server.sessions.at(-1)
      expect(session?.jid?.toString()).toBe('juliet@localhost/ws')

      const romeo = client('romeo', 'j4l13t')
      await romeo.connect()
      const got = new Promise<string>((resolve) =>
        romeo.hooks.on('stanza', ({ element }) => resolve(element.getChildText('body') ?? '')),
      )
      await juliet.send(
        xml(
          'message',
          { to: romeo.jid?.toString(), type: 'chat' },
          xml('body', {}, 'by any other word'),
        ),
      )
      expect(await got).toBe('by any other word')
      await romeo.disconnect()
      await juliet.disconnect()
      expect(juliet.state).toBe('disconnected')
    },
  )

  test('a wrong password: SASLError not-authorized, disconnected', async () => {
    const conn = client('juliet', 'wrong-password')
    const error = await conn.connect().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(SASLError)
    expect(error).toMatchObject({ condition: 'not-authorized' })
    expect(conn.state).toBe('disconnected')
  })
})
