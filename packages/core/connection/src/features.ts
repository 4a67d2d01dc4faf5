import type { Element } from '@core/xml'
import type { Connection } from './connection.js'
import type { Transport } from './transport.js'

/**
 * Explicit priorities for stream features: lower runs first, whatever the order in which
 * plugins registered them. Leave gaps so that other features fit in between.
 */
export const FeaturePriority = {
  STARTTLS: 100,
  SASL: 200,
  /** SASL2 (XEP-0388) runs instead of SASL and may carry bind / resume / enable inline. */
  SASL2: 190,
  RESUME: 300,
  BIND: 400,
  SESSION: 450,
  SM_ENABLE: 500,
} as const

/** What a feature's negotiation asks the connection to do next. */
export type FeatureResult =
  /** The stream must be restarted (after STARTTLS or SASL success). */
  | 'restart'
  /** Go on with the next applicable feature. */
  | 'continue'
  /** Negotiation is complete: the session is online. */
  | 'done'

export interface StreamFeature {
  /** Unique name; recorded in `completed` once it ran. */
  readonly name: string
  readonly priority: number
  /**
   * The `<stream:features/>` child this feature negotiates. When the server marks an offered
   * child `<required/>` (RFC 6120 §4.3.2) and no registered feature names it, negotiation
   * fails instead of going on without it (e.g. STARTTLS required, no TLS plugin).
   */
  readonly offers?: { readonly name: string; readonly xmlns: string }
  /**
   * Negotiation may not complete before this feature ran (SASL: a client must not go
   * online unauthenticated because the server offered no mechanisms). Not the server's
   * `<required/>` marker on an offered feature: that one is checked through `offers`.
   */
  readonly mustRun?: boolean
  /** Whether this feature applies to what the server offered (and the current state). */
  applies(features: Element, nc: NegotiationContext): boolean
  negotiate(features: Element, nc: NegotiationContext): Promise<FeatureResult>
}

export interface WaitOptions {
  /** Milliseconds; defaults to the connection's negotiation timeout. */
  timeout?: number
  /**
   * The matched element is the last one of this stream: a restart follows (STARTTLS
   * `<proceed/>`, SASL `<success/>`). Everything the peer sent after it on the old stream
   * is discarded unread (RFC 6120 §5.3.3, §6.4.6: nothing may be acted on from before the
   * restart; this closes the STARTTLS command injection hole). A function decides per
   * matched element: SASL waits for a challenge, a success or a failure, and only a success
   * ends the stream.
   */
  last?: boolean | ((element: Element) => boolean)
}

/** Handed to the negotiator and to features while a stream is being negotiated. */
export interface NegotiationContext {
  readonly connection: Connection
  readonly transport: Transport
  /** Aborted when this connection attempt ends (drop, timeout, disconnect()). */
  readonly signal: AbortSignal
  /** The domain we connect to (the reference identity for TLS). */
  readonly domain: string
  /** The stream header the peer sent on the current stream. */
  readonly header: Readonly<Record<string, string>>
  /** The registered features, sorted by priority. */
  readonly features: readonly StreamFeature[]
  /** Features that already ran on this connection, across restarts. */
  readonly completed: Set<string>
  /** Set true by a feature that resumed a previous session (XEP-0198). */
  resumed: boolean
  /** Sends an element (it passes the outbound pipeline). */
  send(element: Element): Promise<void>
  /**
   * Resolves with the next inbound top-level element for which `match` returns true; such
   * an element is consumed and skips the inbound pipeline. Elements that arrive while
   * negotiating and match no waiter are kept (bounded) for later waiters, then handed to
   * the inbound pipeline once online. Rejects on timeout or when the connection drops.
   */
  waitFor(match: (element: Element) => boolean, options?: WaitOptions): Promise<Element>
  /**
   * Restarts the stream: a fresh reader, a new stream header, and resolves once the
   * peer's new header arrived. Features return 'restart' instead of calling this.
   */
  restart(): Promise<void>
}

/**
 * The negotiation strategy. The default runs the stream features; a plugin replaces it
 * with `ctx.negotiation(negotiator)` (a component, XEP-0114, does its handshake instead),
 * bringing the content namespace its stream needs.
 */
export interface Negotiator {
  /** The stream's content namespace (RFC 6120 §4.8.2). Default `jabber:client`. */
  readonly xmlns?: string
  /** Attributes of the stream header we send. */
  streamAttributes(connection: Connection): Record<string, string | undefined>
  /** Runs once the peer's first stream header arrived; resolves when online. */
  negotiate(nc: NegotiationContext): Promise<void>
}
