// Stream management (XEP-0198) and @hooks/lifecycle over WebSocket, unchanged: a dropped
// WebSocket is resumed on a new one, and what was sent during the outage arrives once.
import { bind } from '@client/bind'
import { sasl } from '@client/sasl'
import { createConnection } from '@core/connection'
import { xml } from '@core/xml'
import { lifecycle } from '@hooks/lifecycle'
import { startTestServer, type TestServer } from '@test/server'
import { sm } from '@xep/0198-sm'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { websocket } from '../src/index.js'

let server: TestServer
beforeAll(async () => {
  server = await startTestServer({ users: { juliet: 'r0m30' }, tls: false, websocket: true })
})
afterAll(async () => {
  await server.close()
})

test('a dropped WebSocket: the session resumes on a new one, post-resume runs, the message sent meanwhile arrives once', async () => {
  const conn = createConnection({
    transport: websocket(),
    service: server.websocketUrl as string,
    domain: server.domain,
    plugins: [
      sasl.with({ username: 'juliet', password: 'r0m30' }),
      bind.with({ resource: 'ws' }),
      sm,
      lifecycle.with({ idleTimeout: 0, backoff: { initial: 50, max: 200 } }),
    ],
    timeouts: { negotiation: 3000, close: 500 },
  })
  const hooks: string[] = []
  conn.hooks.on('post-connect', () => {
    hooks.push('post-connect')
  })
  conn.hooks.on('post-resume', () => {
    hooks.push('post-resume')
  })
  try {
    await conn.plugins.lifecycle.start()
    expect(conn.plugins.sm.resumable).toBe(true)
    const resumed = conn.hooks.next('post-resume')
    server.sessions.at(-1)?.drop()
    // Sent while the WebSocket is gone: held by SM, written after the resumption.
    const delivered = conn.send(
      xml('message', { to: 'juliet@localhost', id: 'during-outage' }, xml('body', {}, 'x')),
    )
    await resumed
    await delivered
    expect(hooks).toEqual(['post-connect', 'post-resume'])
    const resumedSession = server.sessions.at(-1)
    expect(resumedSession?.received.some((e) => e.name === 'resume')).toBe(true)
    // send() settled once written: wait until the server read it, then for any duplicate.
    const copies = () => server.received.filter((r) => r.element.attrs.id === 'during-outage')
    await expect.poll(() => copies().length).toBe(1)
    await conn.plugins.sm.allAcked()
    expect(copies()).toHaveLength(1)
  } finally {
    await conn.plugins.lifecycle.stop()
  }
})
