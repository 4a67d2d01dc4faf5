import { WebSocketError } from './errors.js'
import type { WebSocketConstructor } from './websocket-api.js'

/** Browsers (and other runtimes bundled with the `browser` condition): the platform's WebSocket. */
export async function defaultWebSocket(_maxMessageBytes: number): Promise<WebSocketConstructor> {
  const native = (globalThis as { WebSocket?: unknown }).WebSocket
  if (typeof native === 'function') return native as WebSocketConstructor
  throw new WebSocketError('unsupported', 'this runtime has no WebSocket (globalThis.WebSocket)')
}

/** Runs `fn` on a later turn of the event loop. */
export const later: (fn: () => void) => void = (fn) => {
  setTimeout(fn, 0)
}
