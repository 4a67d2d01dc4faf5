import type { WebSocketConstructor } from './websocket-api.js'

/** The `ws` package's WebSocket with our options, one class per message limit. */
const wsClasses = new Map<number, WebSocketConstructor>()

/**
 * Node: `globalThis.WebSocket` where it exists (Node 22 and later), else the `ws` package
 * (Node 20). Bundles for browsers get platform-browser.ts instead (package.json `imports`,
 * condition `browser`), so that `ws` and node:net never reach them.
 */
export async function defaultWebSocket(maxMessageBytes: number): Promise<WebSocketConstructor> {
  const native = (globalThis as { WebSocket?: unknown }).WebSocket
  if (typeof native === 'function') return native as WebSocketConstructor
  const known = wsClasses.get(maxMessageBytes)
  if (known) return known
  const { WebSocket } = await import('ws')
  // The `ws` package takes options the WHATWG constructor has not: bound what one message
  // may buffer, follow no HTTP redirects (a see-other-uri is checked; a 3xx would not be),
  // and no compression (compressing secrets beside text an attacker chose leaks them, as
  // CRIME showed for TLS; and inflating costs memory the message limit does not see).
  const Configured = class extends WebSocket {
    constructor(url: string, protocols: string[]) {
      super(url, protocols, {
        maxPayload: maxMessageBytes,
        followRedirects: false,
        perMessageDeflate: false,
      })
    }
  } as unknown as WebSocketConstructor
  wsClasses.set(maxMessageBytes, Configured)
  return Configured
}

/** Runs `fn` after pending I/O callbacks. */
export const later: (fn: () => void) => void = (fn) => {
  setImmediate(fn)
}
