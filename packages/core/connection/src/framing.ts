import type { Element } from '@core/xml'
import { NS_STREAM_ERRORS } from '@core/xml'
import { StreamParser } from '@core/xml'
import type { StreamParserHandlers, StreamParserOptions } from '@core/xml'
import { serialize, STREAM_FOOTER, streamHeader } from '@core/xml'

/** A framing's reader: bytes or messages in, events out. */
export interface StreamReader {
  /** A chunk (TCP) or one message (WebSocket) from the peer. */
  write(data: Uint8Array | string): void
  /** Later writes are ignored. */
  stop(): void
  readonly stopped: boolean
}

/** How a transport frames an XML stream (RFC 6120 §4 over TCP, RFC 7395 over WebSocket). */
export interface Framing {
  /** Our stream opening (also at every restart). */
  open(attrs: Record<string, string | undefined>): string
  readonly close: string
  /** A stream error we send; `appCondition` is serialized (RFC 6120 §4.9.4). */
  streamError(condition: string, appCondition?: string): string
  /** One top-level element; `xmlns` is the stream's content namespace. */
  element(element: Element, xmlns: string): string
  /** One write per tick (byte stream), else one per element (RFC 7395 §3.3.3). */
  readonly batch: boolean
  /** The reader of one stream of the peer's (a new one at every restart). */
  reader(handlers: StreamParserHandlers, xmlns: string, limits?: StreamParserOptions): StreamReader
}

/**
 * RFC 6120 §4: an XML stream over a byte stream (TCP, TLS). RFC 7395's framing is
 * `@transport/ws`'s `websocketFraming`.
 */
export const xmlStreamFraming: Framing = {
  open: (attrs) => streamHeader(attrs),
  close: STREAM_FOOTER,
  streamError: (condition, appCondition = '') =>
    `<stream:error><${condition} xmlns='${NS_STREAM_ERRORS}'/>${appCondition}</stream:error>`,
  element: (element) => serialize(element),
  batch: true,
  reader: (handlers, _xmlns, limits) => new StreamParser(handlers, limits),
}
