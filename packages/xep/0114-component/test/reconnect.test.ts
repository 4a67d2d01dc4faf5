// A component on @hooks/lifecycle: the same reconnection as clients after a network loss,
// and no retry loop on the server's refusals.
import { createConnection } from '@core/connection'
import { lifecycle } from '@hooks/lifecycle'
import { startTestServer, type TestServer } from '@test/server'
import { tcp } from '@transport/tcp'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { component } from '../src/index.js'

let server: TestServer
beforeAll(async () => {
  server = await startTestServer({ components: { 'bot.localhost': 'bot-secret' } })
})
afterAll(async () => {
  await server.close()
})

function bot(secret: string) {
  const conn = createConnection({
    transport: tcp({ allowPlaintext: true }),
    domain: 'bot.localhost',
    service: server.componentService,
    timeouts: { connect: 2000, negotiation: 1000, close: 500 },
    plugins: [
      component.with({ secret }),
      lifecycle.with({ backoff: { initial: 50, max: 200 }, idleTimeout: 0 }),
    ],
  })
  const states: string[] = []
  conn.hooks.on('lifecycle', (s) => {
    states.push(s.state === 'permanent-error' ? `permanent-error ${s.error.condition}` : s.state)
  })
  return { conn, states }
}

const handshakes = (outcome: string) =>
  server.log.filter((e) => e.type === 'component' && e.outcome === outcome).length

test('a network loss: the component reconnects by itself, and post-connect runs again', async () => {
  const { conn, states } = bot('bot-secret')
  let connects = 0
  conn.hooks.on('post-connect', () => {
    connects++
  })
  const before = handshakes('online')
  await conn.plugins.lifecycle.start()
  server.dropComponent('bot.localhost')
  await expect.poll(() => connects, { timeout: 3000 }).toBe(2)
  expect(handshakes('online')).toBe(before + 2)
  expect(conn.state).toBe('online')
  expect(states).toContain('reconnecting')
  await conn.plugins.lifecycle.stop()
  expect(conn.plugins.lifecycle.state.state).toBe('stopped')
})

test('a wrong secret: one permanent error, one attempt, no loop', async () => {
  const { conn, states } = bot('wrong')
  const before = handshakes('not-authorized')
  await expect(conn.plugins.lifecycle.start()).rejects.toMatchObject({
    condition: 'not-authorized',
  })
  // Long enough for several retries at the configured backoff, had there been any.
  await new Promise((resolve) => setTimeout(resolve, 400))
  expect(handshakes('not-authorized')).toBe(before + 1)
  expect(states.filter((s) => s.startsWith('permanent-error'))).toEqual([
    'permanent-error not-authorized',
  ])
  await conn.dispose()
})
