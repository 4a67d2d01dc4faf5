import { type AnyPlugin, createConnection, definePlugin, FeaturePriority } from '@core/connection'
import { MemoryPeer } from '@test/memory-peer'
import { xml } from '@core/xml'
import { type LifecycleOptions, type LifecycleState, lifecycle } from '../src/index.js'

export const TIMEOUTS = { connect: 500, negotiation: 500, close: 200, pluginSetup: 500 }

/** A connection to a MemoryPeer with lifecycle (jitter off unless `random` is given). */
export function withLifecycle<const T extends readonly AnyPlugin[] = []>(
  options: Partial<LifecycleOptions> = {},
  plugins?: T,
) {
  const peer = new MemoryPeer()
  const errors: Error[] = []
  const conn = createConnection({
    transport: peer.transport,
    domain: 'example.com',
    timeouts: TIMEOUTS,
    plugins: [
      ...(plugins ?? ([] as unknown as T)),
      lifecycle.with({ random: () => 0, ...options }),
    ],
  })
  const states: LifecycleState[] = []
  const hooks: string[] = []
  const downtimes: number[] = []
  conn.hooks.on('lifecycle', (s) => {
    states.push(s)
  })
  conn.hooks.on('post-connect', ({ reconnected }) => {
    hooks.push(reconnected ? 'post-connect (again)' : 'post-connect')
  })
  conn.hooks.on('post-resume', ({ downtime }) => {
    hooks.push('post-resume')
    downtimes.push(downtime)
  })
  conn.hooks.on('error', ({ error }) => {
    errors.push(error)
  })
  return { peer, conn, states, hooks, downtimes, errors, names: () => states.map((s) => s.state) }
}

/** Answers the connection's stream header with empty features: the attempt goes online. */
export async function accept(peer: MemoryPeer): Promise<void> {
  await peer.nextHeader()
  peer.open({ features: '' })
}

/** `starting` (lifecycle's start()) once the peer accepted its first attempt. */
export async function startedOnline(peer: MemoryPeer, starting: Promise<unknown>): Promise<void> {
  await accept(peer)
  await starting
}

export const NS_FAKE_RESUME = 'urn:example:fake-resume'

/**
 * A stand-in for stream management's resume path, with only what lifecycle relies on: it
 * keeps the session resumable after a drop (conn.resumable), tries `<resume/>` before
 * anything else when it holds a session, and says so on the negotiation context
 * (`nc.resumed`), falling back to a fresh session on `<failed/>`.
 */
export const fakeResume = definePlugin({
  name: 'fake-resume',
  setup(ctx) {
    const state = { id: undefined as string | undefined, resumes: 0 }
    ctx.feature({
      name: 'fake-resume',
      priority: FeaturePriority.RESUME,
      applies: () => true,
      async negotiate(_features, nc) {
        if (state.id === undefined) {
          state.id = 'session-1'
          return 'done'
        }
        await nc.send(xml('resume', { xmlns: NS_FAKE_RESUME, previd: state.id }))
        const answer = await nc.waitFor((el) => el.attrs.xmlns === NS_FAKE_RESUME)
        if (answer.name === 'resumed') {
          nc.resumed = true
          state.resumes++
        } else {
          state.id = 'session-2'
        }
        return 'done'
      },
    })
    ctx.hooks.on('online', () => {
      ctx.connection.resumable = true
    })
    ctx.hooks.on('session-end', () => {
      ctx.connection.resumable = false
      state.id = undefined
    })
    return state
  },
})
