// Against the in-process test server (@test/server), over real sockets and TLS, with the
// client preset: what the server saw (its accepted sockets, its sessions) is the evidence.
// Real timers, short settings; no assertion on how long anything took.
import { createClient } from '@client/preset'
import { startTestServer, type TestServer } from '@test/server'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { type LifecycleOptions, type LifecycleState, lifecycle } from '../src/index.js'

const USERS = { alice: 'wonder land' }
let server: TestServer
const clients: { plugins: { lifecycle: { stop(): Promise<void> } } }[] = []

beforeEach(async () => {
  server = await startTestServer({ users: USERS })
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.plugins.lifecycle.stop()))
  await server.close()
})

function client(options: Partial<LifecycleOptions> = {}, password = USERS.alice) {
  const c = createClient({
    service: server.service,
    jid: `alice@${server.domain}`,
    resource: 'desk',
    password,
    tls: { ca: server.certs.ca },
    timeouts: { connect: 2000, negotiation: 1000, close: 500 },
    plugins: [lifecycle.with({ backoff: { initial: 50, max: 200 }, idleTimeout: 0, ...options })],
  })
  clients.push(c)
  const states: LifecycleState[] = []
  const hooks: string[] = []
  const errors: Error[] = []
  c.hooks.on('lifecycle', (s) => {
    states.push(s)
  })
  c.hooks.on('post-connect', ({ reconnected }) => {
    hooks.push(reconnected ? 'post-connect (again)' : 'post-connect')
  })
  c.hooks.on('post-resume', () => {
    hooks.push('post-resume')
  })
  c.hooks.on('error', ({ error }) => {
    errors.push(error)
  })
  return { c, states, hooks, errors }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('against the test server', () => {
  test('the socket is killed: the client reconnects by itself and post-connect runs again', async () => {
    const { c, states, hooks } = client()
    await c.plugins.lifecycle.start()
    expect(server.sessions).toHaveLength(1)
    const again = c.hooks.next('post-connect')
    server.sessions[0]?.drop()
    await again
    expect(c.state).toBe('online')
    expect(hooks).toEqual(['post-connect', 'post-connect (again)'])
    expect(states.map((s) => s.state)).toEqual([
      'connecting',
      'online',
      'disconnected',
      'reconnecting',
      'connecting',
      'online',
    ])
    // The server saw a second login, bound and usable.
    expect(server.sessions).toHaveLength(2)
    expect(server.sessions[1]?.jid?.toString()).toBe(`alice@${server.domain}/desk`)
    await c.plugins.ping.ping()
  })

  test('a wrong password: exactly one permanent-error and no further connection attempt', async () => {
    const { c, states } = client({}, 'not her password')
    const error = await c.plugins.lifecycle.start().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toMatchObject({ code: 'sasl-error', condition: 'not-authorized' })
    // Many backoff periods (50 to 200 ms) later, the server still saw one socket.
    await sleep(1500)
    expect(server.sessions).toHaveLength(1)
    expect(states.filter((s) => s.state === 'permanent-error')).toHaveLength(1)
    expect(states.map((s) => s.state)).toEqual(['connecting', 'permanent-error'])
  })

  test('stop() during a backoff wait: the server sees no further attempt', async () => {
    const { c, states } = client({ backoff: { initial: 300, jitter: 0 } })
    await c.plugins.lifecycle.start()
    // Every later login fails at the features step: the retries back off.
    server.faults = { closeAtStep: 'features' }
    server.sessions[0]?.drop()
    await new Promise<void>((resolve) => {
      c.hooks.on('lifecycle', (s) => {
        if (s.state === 'reconnecting' && s.attempt === 2) resolve()
      })
    })
    const seen = server.sessions.length
    await c.plugins.lifecycle.stop()
    server.faults = {}
    await sleep(1000)
    expect(server.sessions).toHaveLength(seen)
    expect(states.at(-1)).toEqual({ state: 'stopped' })
    expect(c.state).toBe('disconnected')
  })

  test('a peer that stops answering (socket open, no bytes) is detected and left', async () => {
    const { c, states } = client({ idleTimeout: 300, probeTimeout: 300 })
    await c.plugins.lifecycle.start()
    const first = server.sessions[0]
    if (!first) throw new Error('no session')
    // The server keeps the socket but answers nothing any more.
    first.faults = { withhold: () => true }
    const back = c.hooks.next('post-connect')
    await back
    expect(first.closed).toBe(true)
    const dropped = states.find((s) => s.state === 'disconnected')
    expect(dropped).toMatchObject({ reason: 'dropped' })
    if (dropped?.state !== 'disconnected') return
    expect(dropped.cause.message).toContain('liveness probe')
    // The probe reached the server and went unanswered.
    expect(first.received.some((el) => el.getChild('ping', 'urn:xmpp:ping') !== undefined)).toBe(
      true,
    )
    expect(server.sessions).toHaveLength(2)
    expect(c.state).toBe('online')
  })

  test('a post-connect handler that throws: reported, and the connection stays up', async () => {
    const { c, errors } = client()
    c.hooks.on('post-connect', async () => {
      await c.plugins.ping.ping()
      throw new Error('roster fetch failed')
    })
    await c.plugins.lifecycle.start()
    expect(errors.map((e) => e.message)).toEqual(['roster fetch failed'])
    expect(c.state).toBe('online')
    expect(await c.plugins.ping.ping()).toBeGreaterThanOrEqual(0)
    expect(server.sessions).toHaveLength(1)
  })
})
