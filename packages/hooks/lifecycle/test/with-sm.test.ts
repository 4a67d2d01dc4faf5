// @hooks/lifecycle with the real @xep/0198-sm against the test server: the seam between
// them (lifecycle only calls connect(); SM decides during negotiation whether to resume).
import { createClient } from '@client/preset'
import { xml } from '@core/xml'
import { startTestServer, type TestServer } from '@test/server'
import { sm } from '@xep/0198-sm'
import { afterEach, expect, test } from 'vitest'
import { lifecycle } from '../src/index.js'

let server: TestServer | undefined
let stop: (() => Promise<void>) | undefined
afterEach(async () => {
  await stop?.()
  await server?.close()
})

async function setup(hibernation: number, idleTimeout = 0) {
  server = await startTestServer({ users: { alice: 'pw' }, sm: { hibernation } })
  const c = createClient({
    service: server.service,
    jid: `alice@${server.domain}/desk`,
    password: 'pw',
    tls: { ca: server.certs.ca },
    timeouts: { connect: 2000, negotiation: 1000, close: 500 },
    plugins: [sm, lifecycle.with({ backoff: { initial: 50, max: 200 }, idleTimeout })],
  })
  stop = () => c.plugins.lifecycle.stop()
  const hooks: string[] = []
  c.hooks.on('post-connect', ({ reconnected }) => {
    hooks.push(reconnected ? 'post-connect (again)' : 'post-connect')
  })
  c.hooks.on('post-resume', () => {
    hooks.push('post-resume')
  })
  const states: string[] = []
  c.hooks.on('lifecycle', (s) => {
    states.push(s.state)
  })
  await c.plugins.lifecycle.start()
  return { c, hooks, states, server }
}

test('the socket is killed: the session resumes, post-resume runs and post-connect does not', async () => {
  const { c, hooks, states, server } = await setup(30_000)
  expect(c.plugins.sm.resumable).toBe(true)
  const resumed = c.hooks.next('post-resume')
  server.sessions[0]?.drop()
  // Sent during the outage: held by SM, written after the resumption.
  const sent = c.send(xml('message', { to: 'alice@localhost', id: 'm1' }, xml('body', {}, 'x')))
  await resumed
  await sent
  expect(hooks).toEqual(['post-connect', 'post-resume'])
  expect(states).toContain('resuming')
  // The second session's stream carried <resume/>, not a bind.
  const second = server.sessions[1]
  expect(second?.received.some((e) => e.name === 'resume')).toBe(true)
  expect(second?.received.some((e) => e.getChild('bind') !== undefined)).toBe(false)
  // send() settled once written: the server may still be reading it.
  await expect.poll(() => second?.received.some((e) => e.attrs.id === 'm1')).toBe(true)
})

test('killed after the session expired: <failed/>, a new session, post-connect runs', async () => {
  const { hooks, server } = await setup(0)
  const again = new Promise<void>((resolve) => {
    const off = server.on('bind', () => {
      off()
      resolve()
    })
  })
  server.sessions[0]?.drop()
  await again
  await expect.poll(() => hooks).toEqual(['post-connect', 'post-connect (again)'])
  const second = server.sessions[1]
  expect(second?.received.some((e) => e.name === 'resume')).toBe(true)
})

test('with SM enabled, the liveness probe is an ack request, not a ping', async () => {
  const { c, server } = await setup(30_000, 150)
  expect(c.plugins.sm.enabled).toBe(true)
  const session = server.sessions[0]
  const before = session?.received.length ?? 0
  await expect
    .poll(() => session?.received.slice(before).some((e) => e.name === 'r'), { timeout: 2000 })
    .toBe(true)
  const pings = session?.received.filter((e) => e.getChild('ping', 'urn:xmpp:ping') !== undefined)
  expect(pings).toEqual([])
  expect(c.state).toBe('online')
})
