import { XMPPError } from '@core/errors'

/** Stable codes of {@link TLSError}. */
export type TLSErrorCode =
  /** The stream is not encrypted, the server offers no STARTTLS and plaintext is not allowed. */
  | 'tls-required'
  /** The server answered `<starttls/>` with `<failure/>`, or dropped before `<proceed/>`. */
  | 'starttls-failed'
  /** The server's certificate does not verify for the XMPP domain (trust or name). */
  | 'certificate'
  /** The TLS handshake failed for another reason (protocol, alert, connection lost). */
  | 'tls-handshake'

/**
 * TLS could not be set up. The stream is never continued in plaintext after one of these.
 * There is no XMPP defined condition for them, so `condition` is undefined.
 */
export class TLSError extends XMPPError {
  declare readonly code: TLSErrorCode
  /**
   * What the TLS layer reported, when it did: Node's or OpenSSL's code, e.g.
   * `ERR_TLS_CERT_ALTNAME_INVALID`, `DEPTH_ZERO_SELF_SIGNED_CERT`, `CERT_HAS_EXPIRED`.
   */
  readonly reason: string | undefined

  constructor(
    code: TLSErrorCode,
    message: string,
    init: { element?: XMPPError['element']; cause?: unknown; reason?: string } = {},
  ) {
    super(code, message, { element: init.element, cause: init.cause })
    this.reason = init.reason
  }
}

/** Stable codes of {@link TcpError}. */
export type TcpErrorCode =
  /** The `service` option is not an `xmpp://` or `xmpps://` address. */
  | 'invalid-service'
  /** SRV says the service is not offered for this domain (a target of "."). */
  | 'service-unavailable'
  /** No target accepted a connection; `cause` holds each target's error. */
  | 'connect-failed'

/** The TCP side of a connection attempt failed. */
export class TcpError extends XMPPError {
  declare readonly code: TcpErrorCode

  constructor(code: TcpErrorCode, message: string, cause?: unknown) {
    super(code, message, { cause })
  }
}
