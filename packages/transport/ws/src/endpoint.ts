import { WebSocketError } from './errors.js'

/**
 * The WebSocket URL of a service: `ws://` or `wss://`, absolute, without a fragment (a
 * WebSocket URL has none). Anything else is WebSocketError `invalid-service`.
 */
export function parseEndpoint(service: string | undefined): URL {
  if (service === undefined || service === '') {
    throw new WebSocketError(
      'invalid-service',
      'no endpoint: set `service` to a wss:// URL, or `discovery`',
    )
  }
  let url: URL
  try {
    url = new URL(service)
  } catch (cause) {
    throw new WebSocketError('invalid-service', `bad service ${JSON.stringify(service)}`, { cause })
  }
  // A WebSocket URL is ws: or wss:, and has no fragment (RFC 6455 §3).
  if ((url.protocol !== 'wss:' && url.protocol !== 'ws:') || service.includes('#')) {
    throw new WebSocketError('invalid-service', `bad service ${JSON.stringify(service)}`)
  }
  return url
}

/**
 * True for a host name that can only mean this machine: `localhost`, 127.0.0.0/8, `[::1]`.
 * Other names are not trusted to resolve to loopback.
 */
export function isLoopback(hostname: string): boolean {
  const host = hostname.toLowerCase()
  if (host === 'localhost' || host === '[::1]') return true
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

/**
 * `ws://` carries the stream, and the password exchange, in the clear. It is allowed to
 * loopback (a server on this machine), or anywhere with `allowPlaintext` (RFC 7395 §3.9
 * leaves TLS to `wss:`; RFC 6120 §13.9 wants the stream protected).
 */
export function checkPlaintext(url: URL, allowPlaintext: boolean): void {
  if (url.protocol === 'wss:' || allowPlaintext || isLoopback(url.hostname)) return
  throw new WebSocketError(
    'plaintext-refused',
    `${url.href}: ws:// is for loopback only; use wss:// (or allowPlaintext)`,
  )
}

/**
 * Where a `<close see-other-uri='...'/>` sends us (RFC 7395 §3.6.1). Refused: anything but
 * `ws:`/`wss:` (the attribute may name another transport, such as BOSH, which this one
 * cannot follow), a move from `wss:` to `ws:` (a lower security context, which the RFC
 * forbids), and `ws:` where plaintext is not allowed.
 */
export function redirectTarget(from: URL, uri: string, allowPlaintext: boolean): URL {
  let to: URL
  try {
    to = parseEndpoint(uri)
  } catch (cause) {
    throw new WebSocketError(
      'redirect-refused',
      `redirect to ${JSON.stringify(uri)}: not a ws:// or wss:// URL`,
      { cause },
    )
  }
  if (from.protocol === 'wss:' && to.protocol === 'ws:') {
    throw new WebSocketError(
      'redirect-refused',
      `redirect from ${from.href} to ${to.href} would drop TLS`,
    )
  }
  checkPlaintext(to, allowPlaintext)
  return to
}
