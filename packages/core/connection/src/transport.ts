import type { Framing } from './framing.js'

/**
 * The byte pipe under a connection. A transport is created per connection attempt by the
 * factory given to createConnection(); the connection owns it until it closes.
 */
export interface Transport {
  /** True once the channel is encrypted (TLS). */
  readonly secure: boolean
  /**
   * How the XML stream is framed on this transport: `xmlStreamFraming` (RFC 6120) for byte
   * streams, or `websocketFraming` (RFC 7395: one element per message). The transport brings
   * it, so a bundle carries only the reader its transports need.
   */
  readonly framing: Framing
  /**
   * Opens the channel. `target.host`/`target.port` are set when the peer redirected us
   * (see-other-host); the TLS reference identity stays `target.domain`.
   */
  connect(target: ConnectTarget, events: TransportEvents): Promise<void>
  /** Writes data; returns false when the caller should wait for `drain`. */
  write(data: string): boolean
  /** Flushes what was written, then closes; during connect(), like destroy(). */
  end(): void
  /** Closes at once; a connect() or TLS upgrade in flight rejects. */
  destroy(error?: Error): void
  /** Stops delivering data until resume() (inbound backpressure). */
  pause?(): void
  resume?(): void
}

export interface ConnectTarget {
  /** The service the user configured (e.g. `xmpp://example.com`). */
  readonly service: string | undefined
  /** The XMPP domain: the name TLS certificates are checked against. */
  readonly domain: string
  /** A redirect's host (see-other-host); the service's host otherwise. */
  readonly host?: string | undefined
  readonly port?: number | undefined
  /** Aborted when the caller gives up on this attempt; connect() should then reject. */
  readonly signal: AbortSignal
}

export interface TransportEvents {
  data(chunk: Uint8Array | string): void
  /** The channel is closed; `error` set when it failed. */
  close(error?: Error): void
  /** Writing may continue after write() returned false. */
  drain(): void
}

export type TransportFactory = () => Transport
