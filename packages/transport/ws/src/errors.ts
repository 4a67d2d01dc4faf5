import { XMPPError } from '@core/errors'

/** Stable codes of {@link WebSocketError}. */
export type WebSocketErrorCode =
  /** The service is not a `ws://` or `wss://` URL (or names none). */
  | 'invalid-service'
  /** `ws://` (no TLS) to a host other than loopback, without `allowPlaintext`. */
  | 'plaintext-refused'
  /** The WebSocket could not be opened (refused, TLS, HTTP error, closed during the handshake). */
  | 'connect-failed'
  /** An open WebSocket closed abnormally (a close code other than 1000 or none: `closeCode`). */
  | 'closed'
  /** More than 4 MiB arrived while reading was paused, on a WebSocket that cannot pause. */
  | 'inbound-limit'
  /** The server did not select the `xmpp` subprotocol (RFC 7395 §3.1). */
  | 'subprotocol'
  /** A see-other-uri redirect was refused: not ws/wss, a downgrade from wss to ws, or malformed. */
  | 'redirect-refused'
  /** More see-other-uri redirects than `maxRedirects` in one connection attempt. */
  | 'redirect-limit'
  /** No WebSocket implementation: neither `globalThis.WebSocket` nor the `ws` package. */
  | 'unsupported'

/**
 * The WebSocket side of a connection failed. There is no XMPP defined condition for these,
 * so `condition` is undefined. Malformed messages from the server (a binary message, two
 * elements in one message, an empty message...) are stream errors instead: `StreamError`
 * with condition `not-well-formed`, sent to the server before the stream closes.
 */
export class WebSocketError extends XMPPError {
  declare readonly code: WebSocketErrorCode
  /** The WebSocket close code, when the failure came with one (e.g. 1006). */
  declare readonly closeCode: number | undefined

  constructor(
    code: WebSocketErrorCode,
    message: string,
    init: { cause?: unknown; closeCode?: number } = {},
  ) {
    super(code, message, { cause: init.cause })
    this.closeCode = init.closeCode
  }
}
