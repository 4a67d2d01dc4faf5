import type { Framing } from './framing.js'

/** The byte pipe under a connection, one per attempt, owned by it until it closes. */
export interface Transport {
  /** True once the channel is encrypted (TLS). */
  readonly secure: boolean
  /** Brought by the transport, so a bundle carries only the reader it needs. */
  readonly framing: Framing
  /** Opens the channel; the TLS reference identity is `target.domain`, even when redirected. */
  connect(target: ConnectTarget, events: TransportEvents): Promise<void>
  /** Writes data; returns false when the caller should wait for `drain`. */
  write(data: string): boolean
  /** Flushes what was written, then closes; during connect(), like destroy(). */
  end(): void
  /** Closes at once; a connect() or TLS upgrade in flight rejects. */
  destroy(error?: Error): void
  /** Inbound backpressure: no data until resume(). */
  pause?(): void
  resume?(): void
}

export interface ConnectTarget {
  readonly service: string | undefined
  readonly domain: string
  /** A redirect's host (see-other-host); the service's host otherwise. */
  readonly host?: string | undefined
  readonly port?: number | undefined
  /**
   * connect() rejects when it aborts. A Connection gives none: it stops a connect() with
   * end() or destroy(), which every transport honours (no AbortSignal per attempt).
   */
  readonly signal?: AbortSignal | undefined
}

export interface TransportEvents {
  data(chunk: Uint8Array | string): void
  close(error?: Error): void
  drain(): void
}

export type TransportFactory = () => Transport
