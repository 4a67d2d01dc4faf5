import type { Element } from 'ltx'

/**
 * Every error this framework reports is an XMPPError: a stable `code` to switch on, and the
 * XMPP `condition` when the protocol defines one.
 */
export class XMPPError extends Error {
  /** Stable, machine-readable identifier, e.g. `stream-error`, `timeout`. */
  declare readonly code: string
  /** The XMPP defined condition (RFC 6120 §4.9.3, §8.3.3, §6.5), when there is one. */
  declare readonly condition: string | undefined
  /** The element that carried the error, when it came from the wire. */
  declare readonly element: Element | undefined

  constructor(
    code: string,
    message: string,
    init: { condition?: string | undefined; element?: Element | undefined; cause?: unknown } = {},
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause })
    this.name = new.target.name
    this.code = code
    this.condition = init.condition
    this.element = init.element
  }
}

/** RFC 6120 §4.9: a stream-level error, sent by the peer (`remote`) or by us. */
export class StreamError extends XMPPError {
  /** true when the peer sent the error, false when we detected it and sent it. */
  declare readonly remote: boolean
  /** Human-readable text from the peer's `<text/>`, if any. */
  declare readonly text: string | undefined

  constructor(
    condition: string,
    message?: string,
    init: { remote?: boolean; text?: string; element?: Element; cause?: unknown } = {},
  ) {
    super('stream-error', message ?? `stream error: ${condition}`, {
      condition,
      element: init.element,
      cause: init.cause,
    })
    this.remote = init.remote ?? false
    this.text = init.text
  }
}

/** RFC 6120 §8.3: an error returned for a stanza (usually an iq). */
export class StanzaError extends XMPPError {
  /** The error type: auth, cancel, continue, modify or wait. */
  declare readonly type: string
  declare readonly text: string | undefined

  constructor(
    condition: string,
    type: string,
    init: { text?: string | undefined; element?: Element; message?: string } = {},
  ) {
    super(
      'stanza-error',
      init.message ?? `stanza error: ${condition}${init.text ? ` (${init.text})` : ''}`,
      {
        condition,
        element: init.element,
      },
    )
    this.type = type
    this.text = init.text
  }
}

/** RFC 6120 §6.5: authentication failed. */
export class SASLError extends XMPPError {
  declare readonly text: string | undefined

  constructor(
    condition: string,
    init: { text?: string; element?: Element; message?: string } = {},
  ) {
    super(
      'sasl-error',
      init.message ?? `SASL failure: ${condition}${init.text ? ` (${init.text})` : ''}`,
      {
        condition,
        element: init.element,
      },
    )
    this.text = init.text
  }
}

/** An operation did not finish in time. */
export class TimeoutError extends XMPPError {
  /** What timed out, when known: `connect`, `negotiation`, `close`, `tls`, `request`, ... */
  declare readonly step: string | undefined

  constructor(message = 'operation timed out', step?: string) {
    super('timeout', message)
    this.step = step
  }
}

/** An operation was cancelled through its AbortSignal. */
export class AbortError extends XMPPError {
  constructor(message = 'operation aborted', cause?: unknown) {
    super('aborted', message, { cause })
  }
}

/**
 * The connection went away while an operation was in flight (`disconnected`), the app
 * stopped it (`stopped`), there is no stream to write to (`not-connected`), or it was
 * disposed (`disposed`).
 */
export class ConnectionError extends XMPPError {
  constructor(
    code:
      | 'disconnected'
      | 'stopped'
      | 'disposed'
      | 'not-connected'
      | 'transport'
      | 'negotiation-failed'
      | 'redirect-limit',
    message: string,
    cause?: unknown,
  ) {
    super(code, message, { cause })
  }
}

/** A JID that violates RFC 7622. */
export class JIDError extends XMPPError {
  constructor(message: string) {
    super('invalid-jid', message, { condition: 'jid-malformed' })
  }
}

/** Misuse of the plugin registry: a missing dependency, a duplicate name, a late registration. */
export class PluginError extends XMPPError {
  declare readonly plugin: string

  constructor(
    code:
      | 'missing-dependency'
      | 'duplicate-plugin'
      | 'registry-frozen'
      | 'setup-failed'
      | 'setup-timeout'
      | 'teardown-failed'
      | 'duplicate-feature'
      | 'duplicate-negotiator'
      | 'next-called-twice'
      | 'foreign-core',
    plugin: string,
    message: string,
    cause?: unknown,
  ) {
    super(code, message, { cause })
    this.plugin = plugin
  }
}
