import type { Element } from '@core/xml'
import {
  type AnyPlugin,
  type Connection,
  type ConnectionOptions,
  createConnection,
  definePlugin,
  type StreamFeature,
} from '../src/index.js'
import { xmlStreamFraming } from '../src/framing.js'
// By path (vitest alias, tsconfig paths): @transport/ws depends on this package.
import { websocketFraming } from '@transport/ws'
import { MemoryPeer } from '@test/memory-peer'

/**
 * The framing the connection-level tests run over: the vitest config runs them once per
 * framing (project `xml-stream` and `websocket-framing`), so every test passes over both.
 */
export const FRAMING =
  process.env.XMPP_TEST_FRAMING === 'websocket' ? websocketFraming : xmlStreamFraming
export const MESSAGE_FRAMED = FRAMING === websocketFraming

/** A MemoryPeer speaking the framing of this test run. */
export function newPeer(): MemoryPeer {
  return new MemoryPeer({ framing: FRAMING })
}

export const SHORT = { connect: 500, negotiation: 500, close: 200, pluginSetup: 500 }

/** A connection to a MemoryPeer, brought online through an empty feature list. */
export async function online<const T extends readonly AnyPlugin[] = []>(
  plugins?: T,
  options: Partial<ConnectionOptions<T>> = {},
): Promise<{ peer: MemoryPeer; conn: Connection<import('../src/index.js').ApisOf<T>> }> {
  const { peer, conn } = withPeer<T>({
    ...(plugins ? { plugins } : {}),
    ...options,
  } as Partial<ConnectionOptions<T>>)
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

/** A connection to a fresh MemoryPeer (domain example.com, short timeouts), not connected. */
export function withPeer<const T extends readonly AnyPlugin[] = []>(
  options: Partial<ConnectionOptions<T>> = {},
): { peer: MemoryPeer; conn: Connection<import('../src/index.js').ApisOf<T>> } {
  const peer = newPeer()
  const conn = createConnection({
    transport: peer.transport,
    domain: 'example.com',
    timeouts: SHORT,
    ...options,
  } as ConnectionOptions<T>)
  return { peer, conn }
}

/** A plugin with one stream feature that always applies (priority 1). */
export function featurePlugin(
  pluginName: string,
  featureName: string,
  negotiate: StreamFeature['negotiate'],
): AnyPlugin {
  return definePlugin({
    name: pluginName,
    setup(ctx) {
      ctx.feature({ name: featureName, priority: 1, applies: () => true, negotiate })
    },
  })
}

/** Attributes without `xmlns`, which RFC 7395 framing declares on every element. */
export function withoutXmlns(attrs: Record<string, unknown>): Record<string, unknown> {
  const { xmlns: _, ...rest } = attrs
  return rest
}

type MessageHandler = (message: Element) => void | Promise<void>

/**
 * A stand-in for @core/router in the core's own tests (the router is a package built on the
 * core): every inbound message goes to the handlers, in order, awaited when async.
 */
export const inbox = definePlugin({
  name: 'inbox',
  setup(ctx) {
    const handlers: MessageHandler[] = []
    const runFrom = (element: Element, i: number): void | Promise<void> => {
      for (; i < handlers.length; i++) {
        const result = (handlers[i] as MessageHandler)(element)
        if (result) return result.then(() => runFrom(element, i + 1))
      }
    }
    ctx.inbound((c, next) => {
      if (c.name !== 'message' || handlers.length === 0) return next()
      c.handled = true
      return runFrom(c.element, 0)
    })
    return {
      message(handler: MessageHandler): void {
        handlers.push(handler)
      },
    }
  },
})
