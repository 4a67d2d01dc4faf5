import {
  type AnyPlugin,
  type Connection,
  createConnection,
  type ConnectionOptions,
} from '../src/index.js'
import { MemoryPeer } from '../src/testing.js'

export const SHORT = { connect: 500, negotiation: 500, close: 200, pluginSetup: 500 }

/** A connection to a MemoryPeer, brought online through an empty feature list. */
export async function online<const T extends readonly AnyPlugin[] = []>(
  plugins?: T,
  options: Partial<ConnectionOptions<T>> = {},
): Promise<{ peer: MemoryPeer; conn: Connection<import('../src/index.js').ApisOf<T>> }> {
  const peer = new MemoryPeer()
  const conn = createConnection({
    transport: peer.transport,
    domain: 'example.com',
    timeouts: SHORT,
    ...(plugins ? { plugins } : {}),
    ...options,
  } as ConnectionOptions<T>)
  const connecting = conn.connect()
  await peer.nextHeader()
  peer.open({ features: '' })
  await connecting
  return { peer, conn }
}

/** Collects hook payloads. */
export function record<T>(subscribe: (fn: (payload: T) => void) => unknown): T[] {
  const seen: T[] = []
  subscribe((payload) => {
    seen.push(payload)
  })
  return seen
}

export const tick = (ms = 0): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
