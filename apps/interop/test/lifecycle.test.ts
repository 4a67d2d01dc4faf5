import { createClient } from '@client/preset'
import { type LifecycleState, lifecycle } from '@hooks/lifecycle'
import { afterEach, describe, expect, test } from 'vitest'
import { prosody, server, sleep } from './prosody.js'

function lifecycleClient(user: string, resource: string) {
  const s = server()
  const password = s.users[user]
  if (password === undefined) throw new Error(`no test user ${user}`)
  const client = createClient({
    service: `xmpp://${s.host}:${s.ports.c2s}`,
    jid: `${user}@${s.domain}`,
    resource,
    password,
    tls: { insecure: true },
    plugins: [lifecycle.with({ backoff: { initial: 100, max: 400 } })],
  })
  const states: LifecycleState[] = []
  const hooks: string[] = []
  client.hooks.on('lifecycle', (state) => {
    states.push(state)
  })
  client.hooks.on('post-connect', ({ reconnected }) => {
    hooks.push(reconnected ? 'post-connect (again)' : 'post-connect')
  })
  client.hooks.on('post-resume', () => {
    hooks.push('post-resume')
  })
  running.push(client)
  return { client, states, hooks }
}

const running: { plugins: { lifecycle: { stop(): Promise<void> } } }[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.plugins.lifecycle.stop()))
})

describe.skipIf(!prosody)('lifecycle against Prosody', () => {
  test('the socket is destroyed: the client comes back by itself, and post-connect runs again', async () => {
    const s = server()
    const { client, states, hooks } = lifecycleClient('bob', 'lifecycle-drop')
    await client.plugins.lifecycle.start()
    const back = client.hooks.next('post-connect')
    client.transport?.destroy()
    await back
    expect(client.state).toBe('online')
    expect(client.jid?.toString()).toBe(`bob@${s.domain}/lifecycle-drop`)
    expect(hooks).toEqual(['post-connect', 'post-connect (again)'])
    expect(states.map((x) => x.state)).toEqual([
      'connecting',
      'online',
      'disconnected',
      'reconnecting',
      'connecting',
      'online',
    ])
    expect(states[3]).toEqual({ state: 'reconnecting', attempt: 1, delay: 0 })
    // The new session is Prosody's: it answers a ping.
    await client.plugins.ping.ping()
  })

  test('a second login with the same resource (conflict) is permanent and does not loop', async () => {
    const first = lifecycleClient('carol', 'lifecycle-conflict')
    await first.client.plugins.lifecycle.start()
    const replaced = new Promise<LifecycleState>((resolve) => {
      first.client.hooks.on('lifecycle', (state) => {
        if (state.state === 'permanent-error') resolve(state)
      })
    })
    const second = lifecycleClient('carol', 'lifecycle-conflict')
    await second.client.plugins.lifecycle.start()
    // Prosody resolves the conflict by closing the older session with <conflict/>.
    const outcome = await replaced
    expect(outcome).toMatchObject({
      state: 'permanent-error',
      error: { code: 'stream-error', condition: 'conflict', remote: true },
    })
    // Several backoff periods later: the first never tried again (a loop would also have
    // kicked the second one out), and the second is still the one online.
    await sleep(1500)
    expect(first.states.filter((x) => x.state === 'connecting')).toHaveLength(1)
    expect(first.states.filter((x) => x.state === 'permanent-error')).toHaveLength(1)
    expect(first.client.state).toBe('disconnected')
    expect(second.states.map((x) => x.state)).toEqual(['connecting', 'online'])
    expect(second.client.state).toBe('online')
    await second.client.plugins.ping.ping()
  })
})
