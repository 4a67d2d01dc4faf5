import type { ConnectTarget, Transport, TransportEvents, TransportFactory } from '@core/connection'
import { ConnectionError } from '@core/errors'
import { ElementReader, NS_CLIENT } from '@core/xml'
import { defaultWebSocket, later } from '#platform'
import type { Discovery } from './discovery.js'
import { NS_FRAMING, websocketFraming } from './framing.js'
import { checkPlaintext, parseEndpoint, redirectTarget } from './endpoint.js'
import { WebSocketError } from './errors.js'
import type {
  CloseEventLike,
  ErrorEventLike,
  MessageEventLike,
  WebSocketConstructor,
  WebSocketLike,
} from './websocket-api.js'

export interface WebSocketOptions {
  /**
   * Permit `ws://` (no TLS) to hosts other than loopback. Default false: `ws://` then goes
   * to `localhost`, 127.0.0.0/8 and `[::1]` only, and anything else fails with
   * WebSocketError `plaintext-refused` before a connection is opened.
   */
  allowPlaintext?: boolean
  /** How many see-other-uri redirects one connection attempt follows. Default 3. */
  maxRedirects?: number
  /**
   * The WebSocket class to use. Default: `globalThis.WebSocket` (browsers, Node 22+), else
   * the `ws` package (Node 20).
   */
  WebSocket?: WebSocketConstructor
  /**
   * Largest message the `ws` package buffers, in bytes (its `maxPayload`); a larger one
   * closes the connection (1009). Default 1 MiB, the stream reader's default stanza limit.
   * Browsers and Node's own WebSocket have no such setting.
   */
  maxMessageBytes?: number
  /**
   * How to find the endpoint when the connection has no `service`, e.g. `hostMeta()`
   * (XEP-0156: HTTPS only, `wss:` links only). Default: none, a `service` is required; the
   * lookup's code is only in a bundle that imports it. What it finds is checked like a
   * `service` (`ws:` to loopback only unless `allowPlaintext`).
   */
  discovery?: Discovery | false | undefined
}

/** RFC 7395 §3.1: the WebSocket subprotocol of XMPP. */
export const SUBPROTOCOL = 'xmpp'

const DEFAULT_MAX_REDIRECTS = 3
const DEFAULT_MAX_MESSAGE_BYTES = 1_048_576
/** write() returns false past this many queued bytes; drain follows once below LOW_WATER. */
const HIGH_WATER = 1_048_576
const LOW_WATER = 65_536
const DRAIN_POLL_MS = 10
/** What a WebSocket that cannot pause may deliver while paused before the connection ends. */
const INBOX_LIMIT = 4 * 1_048_576
const OPEN = 1
const CLOSED = 3
const BRAND = Symbol.for('@transport/ws.WebSocketTransport')

type Phase = 'idle' | 'connecting' | 'open' | 'redirecting' | 'closed'

/**
 * XMPP over WebSocket (RFC 7395). One instance per connection attempt; give `websocket()`
 * to createConnection() rather than building one. The framing (`<open/>`, `<close/>`, one
 * element per message) is `websocketFraming` (framing.ts), which this transport brings.
 */
export class WebSocketTransport implements Transport {
  readonly framing = websocketFraming
  declare readonly allowPlaintext: boolean
  /** Settles (never rejects) once the transport is closed, with the error if it failed. */
  declare readonly closed: Promise<Error | undefined>
  readonly #options: WebSocketOptions
  #markClosed: (error: Error | undefined) => void = () => undefined
  #phase: Phase = 'idle'
  #socket: WebSocketLike | undefined
  #url: URL | undefined
  #events: TransportEvents | undefined
  /** Aborted by destroy() and the caller's signal (a Connection gives none) during connect. */
  #connecting: AbortController | undefined
  #signal: AbortSignal | undefined
  /** Aborts the open in flight (connect or redirect) on destroy(). */
  #stop: AbortController | undefined
  #error: Error | undefined
  /**
   * Until the server's first message: our `<open/>`, sent again to the new endpoint when
   * that first message is a see-other-uri redirect.
   */
  #opening: string[] | undefined = []
  /** Writes made while a redirect opens the next WebSocket. */
  #held: string[] = []
  #redirects = 0
  #seeOtherUri: URL | undefined
  #paused = false
  /** Messages that arrived while paused, on a WebSocket that cannot pause (WHATWG). */
  #inbox: (string | Uint8Array)[] = []
  #inboxSize = 0
  #drainTimer: ReturnType<typeof setTimeout> | undefined

  constructor(options: WebSocketOptions = {}) {
    checkOptions(options)
    this.#options = options
    this.allowPlaintext = options.allowPlaintext === true
    this.closed = new Promise((resolve) => {
      this.#markClosed = resolve
    })
  }

  static {
    Object.defineProperty(WebSocketTransport.prototype, BRAND, { value: true })
  }

  /** True over `wss:` (TLS, its certificate verified by the platform). */
  get secure(): boolean {
    return this.#url?.protocol === 'wss:'
  }

  /**
   * True over `wss:`: browsers, Node's WebSocket and the `ws` package (as used here) verify
   * the certificate and fail the connection otherwise. A `WebSocket` class of your own
   * that skips the check makes this claim false: do not give one outside tests.
   */
  get verified(): boolean {
    return this.secure
  }

  /** The endpoint this transport is connected to (after any redirect). */
  get url(): string | undefined {
    return this.#url?.href
  }

  /**
   * The endpoint a server named in a `<close see-other-uri/>` after the stream was under
   * way (RFC 7395 §3.6.1), checked like a redirect during connect; undefined otherwise.
   * The transport does not move a running session: connect again with it as `service`.
   */
  get seeOtherUri(): string | undefined {
    return this.#seeOtherUri?.href
  }

  async connect(target: ConnectTarget, events: TransportEvents): Promise<void> {
    if (this.#phase !== 'idle') {
      throw new WebSocketError('connect-failed', 'a WebSocketTransport connects once')
    }
    this.#phase = 'connecting'
    this.#events = events
    const connecting = new AbortController()
    this.#connecting = connecting
    this.#signal = connecting.signal
    const outer = target.signal
    const onAbort = () => connecting.abort(outer?.reason)
    try {
      outer?.throwIfAborted()
      outer?.addEventListener('abort', onAbort, { once: true })
      if (target.host !== undefined) {
        // RFC 7395 §3.6.1: over WebSocket, a server moves a client with see-other-uri;
        // a see-other-host names no URL path or scheme to go to.
        throw new WebSocketError('redirect-refused', `see-other-host ${target.host}: not a URL`)
      }
      const url = parseEndpoint(target.service ?? (await this.#discover(target)))
      checkPlaintext(url, this.allowPlaintext)
      const socket = await this.#open(url)
      this.#attach(socket, url)
      this.#phase = 'open'
    } catch (error) {
      this.#finish(error instanceof Error ? error : new Error(String(error)))
      throw error
    } finally {
      outer?.removeEventListener('abort', onAbort)
    }
  }

  /** XEP-0156 §3: the first endpoint `discovery` finds for the domain. */
  async #discover(target: ConnectTarget): Promise<string | undefined> {
    const discovery = this.#options.discovery
    if (!discovery) return undefined
    const first = (await discovery(target.domain, this.#signal as AbortSignal))[0]
    if (first === undefined) {
      throw new WebSocketError(
        'invalid-service',
        `discovery found no endpoint for ${target.domain}`,
      )
    }
    return first
  }

  /** Opens one WebSocket and waits for the handshake, the subprotocol checked. */
  async #open(url: URL): Promise<WebSocketLike> {
    const stop = new AbortController()
    this.#stop = stop
    const signal = this.#signal as AbortSignal
    const onAbort = () => stop.abort(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      const max = this.#options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES
      const Impl = this.#options.WebSocket ?? (await defaultWebSocket(max))
      stop.signal.throwIfAborted()
      return await openSocket(Impl, url, stop.signal)
    } finally {
      signal.removeEventListener('abort', onAbort)
      if (this.#stop === stop) this.#stop = undefined
    }
  }

  #attach(socket: WebSocketLike, url: URL): void {
    this.#socket = socket
    this.#url = url
    socket.addEventListener('message', this.#onMessage)
    socket.addEventListener('close', this.#onClose)
    // Never removed: the `ws` package throws an 'error' that has no listener, and a socket
    // let go of (a redirect, destroy()) may still report one.
    socket.addEventListener('error', (event: ErrorEventLike) => {
      if (this.#socket !== socket) return
      this.#error ??= errorOf(event, 'the WebSocket failed')
      // Node's WebSocket (undici) may report an error and no close: a closed socket after
      // an error is the end, close event or not.
      later(() => {
        if (this.#socket === socket && socket.readyState === CLOSED) {
          this.#detach(socket)
          this.#finish(this.#error)
        }
      })
    })
    if (this.#paused) socket.pause?.()
  }

  #detach(socket: WebSocketLike): void {
    socket.removeEventListener('message', this.#onMessage)
    socket.removeEventListener('close', this.#onClose)
    if (this.#socket === socket) this.#socket = undefined
  }

  readonly #onMessage = (event: MessageEventLike): void => {
    const { data } = event
    if (typeof data === 'string') {
      if (this.#opening !== undefined) {
        if (this.#redirected(data)) return
        this.#opening = undefined
      } else if (data.startsWith('<close')) {
        this.#noteSeeOtherUri(data)
      }
      this.#deliver(data)
      return
    }
    // RFC 7395 §3.2: text messages only. The bytes go to the framing's reader, which ends
    // the stream with not-well-formed (binaryType is arraybuffer: no Blob arrives here).
    this.#opening = undefined
    this.#deliver(toBytes(data))
  }

  #deliver(data: string | Uint8Array): void {
    if (this.#paused && this.#socket?.pause === undefined) {
      // The server is not told to wait (it cannot be, here): what it sends meanwhile is
      // held, up to a bound past which the connection ends instead of memory growing.
      this.#inboxSize += data.length
      if (this.#inboxSize > INBOX_LIMIT) {
        this.destroy(
          new WebSocketError('inbound-limit', `over ${INBOX_LIMIT} bytes received while paused`),
        )
        return
      }
      this.#inbox.push(data)
      return
    }
    this.#events?.data(data)
  }

  /**
   * RFC 7395 §3.6.1: a server may answer our first `<open/>` with a `<close/>` that names
   * another endpoint. Followed here, before the connection has seen anything: the new
   * WebSocket gets the same `<open/>`, and the connection goes on as if nothing happened.
   */
  #redirected(data: string): boolean {
    const uri = closeRedirect(data)
    if (uri === undefined) return false
    const from = this.#url as URL
    const max = this.#options.maxRedirects ?? DEFAULT_MAX_REDIRECTS
    let to: URL
    try {
      if (this.#redirects >= max) {
        throw new WebSocketError('redirect-limit', `over ${max} see-other-uri redirects (${uri})`)
      }
      to = redirectTarget(from, uri, this.allowPlaintext)
    } catch (error) {
      this.destroy(error as Error)
      return true
    }
    this.#redirects++
    this.#follow(to)
    return true
  }

  #follow(to: URL): void {
    const old = this.#socket as WebSocketLike
    this.#detach(old)
    this.#socket = undefined
    this.#phase = 'redirecting'
    old.close(1000)
    this.#open(to).then(
      (socket) => {
        if (this.#phase !== 'redirecting') {
          socket.close(1000)
          return
        }
        this.#attach(socket, to)
        this.#phase = 'open'
        const again = [...(this.#opening ?? []), ...this.#held]
        this.#held = []
        for (const data of again) socket.send(data)
        this.#events?.drain()
      },
      (error: unknown) => {
        if (this.#phase === 'redirecting') {
          this.#finish(error instanceof Error ? error : new Error(String(error)))
        }
      },
    )
  }

  /** A see-other-uri after the stream started: noted (checked), not followed. */
  #noteSeeOtherUri(data: string): void {
    const uri = closeRedirect(data)
    if (uri === undefined) return
    try {
      this.#seeOtherUri = redirectTarget(this.#url as URL, uri, this.allowPlaintext)
    } catch (error) {
      this.#error ??= error as Error
    }
  }

  readonly #onClose = (event: CloseEventLike): void => {
    const socket = this.#socket
    // An abnormal close says so with its code; what the 'error' event said (Node's
    // WebSocket reports one, often empty, before such a close) becomes its cause.
    const error = closeError(event, this.#error) ?? this.#error
    if (socket) this.#detach(socket)
    this.#finish(error)
  }

  write(data: string): boolean {
    if (this.#phase === 'redirecting') {
      this.#held.push(data)
      return false
    }
    const socket = this.#socket
    if (this.#phase !== 'open' || !socket || socket.readyState !== OPEN) return false
    // Until the server answers, what we send is our <open/>: kept for a redirect.
    this.#opening?.push(data)
    socket.send(data)
    if (socket.bufferedAmount < HIGH_WATER) return true
    this.#watchDrain(socket)
    return false
  }

  /** The WHATWG WebSocket has no drain event: watch its queue until it is low again. */
  #watchDrain(socket: WebSocketLike): void {
    if (this.#drainTimer !== undefined) return
    const poll = () => {
      this.#drainTimer = undefined
      if (this.#socket !== socket || this.#phase !== 'open') return
      if (socket.bufferedAmount > LOW_WATER) {
        this.#drainTimer = setTimeout(poll, DRAIN_POLL_MS)
        return
      }
      this.#events?.drain()
    }
    this.#drainTimer = setTimeout(poll, DRAIN_POLL_MS)
  }

  /** Closes the WebSocket after what was sent (RFC 6455 §7: queued data goes first). */
  end(): void {
    if (this.#phase === 'open' && this.#socket) this.#socket.close(1000)
    else this.destroy()
  }

  destroy(error?: Error): void {
    if (error) this.#error ??= error
    if (this.#phase === 'closed') return
    const reason = error ?? new ConnectionError('disconnected', 'the transport was destroyed')
    this.#stop?.abort(reason)
    this.#connecting?.abort(reason)
    // Ended on our side: what was held while paused is not delivered any more.
    this.#inbox = []
    this.#inboxSize = 0
    const socket = this.#socket
    if (socket) {
      this.#detach(socket)
      if (socket.terminate) socket.terminate()
      else socket.close(1000)
    }
    this.#finish(this.#error)
  }

  pause(): void {
    this.#paused = true
    this.#socket?.pause?.()
  }

  resume(): void {
    this.#paused = false
    this.#socket?.resume?.()
    // Messages held because this WebSocket cannot pause, in order; a handler may pause again.
    const inbox = this.#inbox
    let i = 0
    while (i < inbox.length && !this.#paused && this.#phase !== 'closed') {
      const data = inbox[i++] as string | Uint8Array
      this.#inboxSize -= data.length
      this.#events?.data(data)
    }
    if (i > 0 && this.#inbox === inbox) inbox.splice(0, i)
  }

  /**
   * Reports the close once, a turn later: a failure thrown by connect() reaches the
   * connection first, with its own type.
   */
  #finish(error: Error | undefined): void {
    if (this.#phase === 'closed') return
    this.#phase = 'closed'
    this.#held = []
    this.#opening = undefined
    clearTimeout(this.#drainTimer)
    this.#drainTimer = undefined
    this.#markClosed(error)
    const events = this.#events
    const inbox = this.#inbox
    this.#inbox = []
    this.#inboxSize = 0
    if (events) {
      later(() => {
        // What arrived before the close and was held by a pause is still the peer's.
        for (const data of inbox) events.data(data)
        events.close(error)
      })
    }
  }
}

/** Opens a WebSocket with subprotocol `xmpp` and resolves once it is open and checked. */
function openSocket(
  Impl: WebSocketConstructor,
  url: URL,
  signal: AbortSignal,
): Promise<WebSocketLike> {
  return new Promise((resolve, reject) => {
    let socket: WebSocketLike
    try {
      socket = new Impl(url.href, [SUBPROTOCOL])
    } catch (cause) {
      reject(
        new WebSocketError('connect-failed', `cannot open ${url.href}: ${describe(cause)}`, {
          cause,
        }),
      )
      return
    }
    socket.binaryType = 'arraybuffer'
    let failure: Error | undefined
    let settled = false
    // The error listener stays (see #attach): the `ws` package throws an unheard 'error'.
    const done = () => {
      settled = true
      signal.removeEventListener('abort', onAbort)
      socket.removeEventListener('open', onOpen)
      socket.removeEventListener('close', onClose)
    }
    const fail = (error: Error) => {
      done()
      if (socket.terminate) socket.terminate()
      else socket.close(1000)
      reject(error)
    }
    const onAbort = () => fail(signal.reason as Error)
    const onOpen = () => {
      // RFC 7395 §3.1: a server that did not select `xmpp` does not speak it; close.
      if (socket.protocol !== SUBPROTOCOL) {
        fail(
          new WebSocketError(
            'subprotocol',
            `${url.href} did not select subprotocol "xmpp"${socket.protocol ? ` (chose "${socket.protocol}")` : ''}`,
          ),
        )
        return
      }
      done()
      resolve(socket)
    }
    const onError = (event: ErrorEventLike) => {
      failure ??= errorOf(event, `cannot connect to ${url.href}`)
      // An error before 'open' is a failed handshake. Node's WebSocket (undici) may then
      // report no close, and stay CONNECTING for good: do not wait for one.
      later(() => onClose({ code: 1006, reason: '' }))
    }
    const onClose = (event: CloseEventLike) => {
      if (settled) return
      const cause = failure
      const message = cause?.message ?? `closed during the handshake (code ${event.code})`
      fail(
        new WebSocketError(
          // The `ws` package and Node's WebSocket fail the handshake themselves when the
          // server selects no subprotocol (browsers too, and say nothing).
          /subprotocol|sent protocols/i.test(message) ? 'subprotocol' : 'connect-failed',
          `cannot connect to ${url.href}: ${message}`,
          { cause, closeCode: event.code },
        ),
      )
    }
    socket.addEventListener('open', onOpen)
    socket.addEventListener('error', onError)
    socket.addEventListener('close', onClose)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** The see-other-uri of a framing `<close/>` message (RFC 7395 §3.6.1), if it has one. */
export function closeRedirect(data: string): string | undefined {
  if (!data.startsWith('<close')) return undefined
  // Read as the framing's reader reads messages (restricted XML, bounded); a message that is
  // not well-formed is no redirect (the framing's reader reports it as a stream error).
  const found = new ElementReader(NS_CLIENT).read(data).elements[0]
  if (found?.name !== 'close' || found.attrs.xmlns !== NS_FRAMING) return undefined
  const uri = found.attrs['see-other-uri']
  return typeof uri === 'string' ? uri : undefined
}

function toBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  // Anything else (a Blob, should binaryType have been changed) is binary all the same.
  return new Uint8Array(0)
}

function errorOf(event: ErrorEventLike, fallback: string): Error {
  const { error } = event
  if (error instanceof Error) return error
  return new Error(event.message || fallback)
}

/** 1000 (normal) and 1005 (no code) are clean; anything else says what went wrong. */
function closeError(event: CloseEventLike, cause: Error | undefined): WebSocketError | undefined {
  if (event.code === 1000 || event.code === 1005) return undefined
  const reason = event.reason ? `: ${event.reason}` : ''
  const detail = cause?.message ? ` (${cause.message})` : ''
  return new WebSocketError('closed', `WebSocket closed (${event.code})${reason}${detail}`, {
    cause,
    closeCode: event.code,
  })
}

function checkOptions(options: WebSocketOptions): void {
  const { maxRedirects, maxMessageBytes } = options
  if (maxRedirects !== undefined && !(Number.isInteger(maxRedirects) && maxRedirects >= 0)) {
    throw new TypeError('websocket: bad `maxRedirects`')
  }
  if (
    maxMessageBytes !== undefined &&
    !(Number.isInteger(maxMessageBytes) && maxMessageBytes > 0)
  ) {
    throw new TypeError('websocket: bad `maxMessageBytes`')
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** True for a WebSocketTransport, also one from another copy of this package. */
export function isWebSocketTransport(value: unknown): value is WebSocketTransport {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[BRAND] === true
  )
}

/**
 * The transport factory for createConnection():
 * `createConnection({ transport: websocket(), service: 'wss://example.com/xmpp-websocket', ... })`.
 */
export function websocket(options: WebSocketOptions = {}): TransportFactory {
  checkOptions(options)
  return () => new WebSocketTransport(options)
}
