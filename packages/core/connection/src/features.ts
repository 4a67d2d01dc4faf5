import type { Element } from '@core/xml'
import type { Connection } from './connection.js'
import type { Transport } from './transport.js'

/** Stream feature priorities: lower runs first, whatever the registration order. */
export const FeaturePriority = {
  STARTTLS: 100,
  SASL: 200,
  /** XEP-0388: instead of SASL, may carry bind / resume / enable inline. */
  SASL2: 190,
  RESUME: 300,
  BIND: 400,
  SESSION: 450,
  SM_ENABLE: 500,
} as const

/** What comes next: a stream restart (after STARTTLS, SASL), the next feature, or online. */
export type FeatureResult = 'restart' | 'continue' | 'done'

export interface StreamFeature {
  readonly name: string
  readonly priority: number
  /**
   * The `<stream:features/>` child negotiated: a child the server marks `<required/>` (RFC
   * 6120 §4.3.2) that no feature offers fails negotiation.
   */
  readonly offers?: { readonly name: string; readonly xmlns: string }
  /** Negotiation may not complete before it ran (SASL); unrelated to `<required/>`. */
  readonly mustRun?: boolean
  applies(features: Element, nc: NegotiationContext): boolean
  negotiate(features: Element, nc: NegotiationContext): Promise<FeatureResult>
}

export interface WaitOptions {
  /** Milliseconds; defaults to the connection's negotiation timeout. */
  timeout?: number
  /**
   * The matched element ends this stream (a restart follows): what came after it is
   * discarded unread (RFC 6120 §5.3.3, §6.4.6; STARTTLS command injection). A function
   * decides per element (SASL: only `<success/>`).
   */
  last?: boolean | ((element: Element) => boolean)
}

/** Handed to the negotiator and features during negotiation. */
export interface NegotiationContext {
  readonly connection: Connection
  readonly transport: Transport
  /** Aborted when this attempt ends (drop, timeout, disconnect()). */
  readonly signal: AbortSignal
  /** The reference identity for TLS. */
  readonly domain: string
  readonly header: Readonly<Record<string, string>>
  readonly features: readonly StreamFeature[]
  /** Features that already ran, across restarts. */
  readonly completed: Set<string>
  /** Set true by a feature that resumed a previous session (XEP-0198). */
  resumed: boolean
  send(element: Element): Promise<void>
  /**
   * The next top-level element `match` accepts (consumed). Unmatched ones are kept (bounded)
   * for later waits, then go to the inbound pipeline once online. Rejects on timeout or drop.
   */
  waitFor(match: (element: Element) => boolean, options?: WaitOptions): Promise<Element>
  /** Resolves once the peer's new header arrived; features return 'restart' instead. */
  restart(): Promise<void>
}

/** The negotiation strategy: the stream features, or a plugin's (XEP-0114 handshake). */
export interface Negotiator {
  /** The stream's content namespace (RFC 6120 §4.8.2). Default `jabber:client`. */
  readonly xmlns?: string
  /** Attributes of the stream header we send. */
  streamAttributes(connection: Connection): Record<string, string | undefined>
  /** Runs after the peer's first header; resolves when online. */
  negotiate(nc: NegotiationContext): Promise<void>
}
