/**
 * The part of the WHATWG WebSocket API this transport uses: what browsers, Node 22+
 * (`globalThis.WebSocket`) and the `ws` package all provide.
 */
export interface WebSocketLike {
  /** The subprotocol the server selected ('' when none). */
  readonly protocol: string
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number
  /** Bytes queued by send() and not yet handed to the network. */
  readonly bufferedAmount: number
  binaryType: string
  send(data: string): void
  close(code?: number, reason?: string): void
  addEventListener(type: string, listener: (event: never) => void): void
  removeEventListener(type: string, listener: (event: never) => void): void
  /** The `ws` package only: stop and restart reading from the socket. */
  pause?(): void
  resume?(): void
  /** The `ws` package only: close at once, without the closing handshake. */
  terminate?(): void
}

/** A WebSocket class: `globalThis.WebSocket`, the `ws` package's, or one of your own. */
export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike

export interface MessageEventLike {
  readonly data: unknown
}

export interface CloseEventLike {
  readonly code: number
  readonly reason: string
  readonly wasClean?: boolean
}

export interface ErrorEventLike {
  /** The `ws` package and Node's WebSocket give the error; browsers give nothing. */
  readonly error?: unknown
  readonly message?: string
}
