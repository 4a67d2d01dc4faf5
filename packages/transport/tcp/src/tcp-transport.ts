import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import {
  type ConnectTarget,
  type Transport,
  type TransportEvents,
  type TransportFactory,
  xmlStreamFraming,
} from '@core/connection'
import { ConnectionError, TimeoutError } from '@core/errors'
import { TcpError, TLSError } from './errors.js'
import { PlaintextGuard } from './plaintext-guard.js'
import { isIpLiteral, parseService } from './service.js'
import { DEFAULT_PORTS, resolveTargets, type SrvResolver, type TcpTarget } from './srv.js'
import { ALPN_CLIENT, handshakeError, type TlsSettings, tlsOptions } from './tls-verify.js'

export interface TcpOptions {
  /** Certificate checks. Verified against the XMPP domain unless `insecure` is set. */
  tls?: TlsSettings
  /**
   * Permit a stream without TLS when the server offers no STARTTLS. Default false: until TLS
   * is up the transport then writes nothing but the stream header, `<starttls/>`, a stream
   * error and the closing tag, whichever plugins are registered; anything else ends the
   * connection with TLSError `tls-required` before it is written.
   */
  allowPlaintext?: boolean
  /** SRV lookups. Default: node:dns/promises resolveSrv. */
  resolver?: SrvResolver
  /**
   * Milliseconds for each target to accept the TCP connection (and, for direct TLS, to
   * finish the handshake) before the next target is tried. Default 5000; 0 disables it.
   * The connection's own `timeouts.connect` bounds the whole attempt.
   */
  connectTimeout?: number
  /**
   * Milliseconds for the TLS handshake after the server's `<proceed/>` (STARTTLS). Default
   * 10000, the connection's default negotiation timeout; it cannot be turned off: a server
   * that proceeds and then goes silent must not leave connect() pending. Direct TLS is
   * bounded by `connectTimeout` and the connection's `timeouts.connect`.
   */
  handshakeTimeout?: number
}

const DEFAULT_CONNECT_TIMEOUT = 5_000
const DEFAULT_HANDSHAKE_TIMEOUT = 10_000
/** Idle time before the first TCP keep-alive probe. */
const KEEPALIVE_DELAY = 30_000
const BRAND = Symbol.for('@transport/tcp.TcpTransport')

type Phase = 'idle' | 'connecting' | 'open' | 'upgrading' | 'closed'

/** The transport of each socket that has its listeners (see the static block below). */
const OWNERS = new WeakMap<Socket, TcpTransport>()
let onSocketData: (this: Socket, chunk: Buffer) => void
let onSocketDrain: (this: Socket) => void
let onSocketError: (this: Socket, error: Error) => void
let onSocketClose: (this: Socket) => void

/**
 * XMPP over TCP (RFC 6120 §3, §5) with STARTTLS or direct TLS (XEP-0368). One instance per
 * connection attempt; give `tcp()` to createConnection() rather than building one.
 */
export class TcpTransport implements Transport {
  /** RFC 6120 §4: one XML stream over the byte stream. */
  readonly framing = xmlStreamFraming
  /** Set by `tcp({ allowPlaintext })`: the starttls plugin may then go on without TLS. */
  readonly allowPlaintext: boolean
  readonly #options: TcpOptions
  /**
   * Why destroy() stopped the operation in flight (connect, STARTTLS), and how it tells the
   * current wait (SRV lookup, socket, handshake). Nothing while none runs, and no
   * AbortController: the connection stops a connect() with end() or destroy().
   */
  #stopped: Error | undefined
  #interrupt: ((error: Error) => void) | undefined
  /** `closed`, made when first asked for (most apps never do). */
  #closed: Promise<Error | undefined> | undefined
  #markClosed: ((error: Error | undefined) => void) | undefined
  #closedWith: Error | undefined
  #phase: Phase = 'idle'
  #socket: Socket | undefined
  #secure = false
  #verified = false
  #remote: TcpTarget | undefined
  #events: TransportEvents | undefined
  #domain = ''
  #error: Error | undefined
  #paused = false
  /** Writes made while STARTTLS runs: they go out encrypted or not at all. */
  #held: string[] | undefined
  /**
   * While the stream is not encrypted and plaintext is not allowed: refuses every write but
   * the stream header, `<starttls/>`, a stream error and the closing tag. Dropped once TLS
   * is up (and never made for direct TLS or with allowPlaintext).
   */
  #guard: PlaintextGuard | undefined
  #tuned = false

  constructor(options: TcpOptions = {}) {
    checkOptions(options)
    this.#options = options
    this.allowPlaintext = options.allowPlaintext === true
  }

  static {
    // On the prototype rather than on each instance: isTcpTransport() reads it either way.
    Object.defineProperty(TcpTransport.prototype, BRAND, { value: true })
  }

  #throwIfStopped(): void {
    if (this.#stopped) throw this.#stopped
  }

  /** Settles like `promise`, or rejects as soon as destroy() stops the operation. */
  #interruptible<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#interrupt = reject
      promise.then(resolve, reject)
    })
  }

  /**
   * Settles (never rejects) as soon as the socket is closed, with the error if it failed,
   * before `close` is reported to the connection.
   */
  get closed(): Promise<Error | undefined> {
    if (!this.#closed) {
      this.#closed =
        this.#phase === 'closed'
          ? Promise.resolve(this.#closedWith)
          : new Promise((resolve) => {
              this.#markClosed = resolve
            })
    }
    return this.#closed
  }

  /** True once the stream runs over TLS that verified (or `tls.insecure` was set). */
  get secure(): boolean {
    return this.#secure
  }

  /**
   * True once the stream runs over TLS whose certificate verified for the domain. False over
   * plaintext, and over TLS accepted only because `tls.insecure` was set: such a channel is
   * encrypted but anyone on the path may be at its other end (SASL PLAIN asks for an opt-in
   * there).
   */
  get verified(): boolean {
    return this.#verified
  }

  /** The target this transport connected to. */
  get remote(): Readonly<TcpTarget> | undefined {
    return this.#remote
  }

  /** The ALPN protocol the server selected, when TLS is up (`false` when none). */
  get alpnProtocol(): string | false | undefined {
    return this.#secure ? ((this.#socket as TLSSocket).alpnProtocol ?? false) : undefined
  }

  async connect(target: ConnectTarget, events: TransportEvents): Promise<void> {
    if (this.#phase !== 'idle') {
      throw new TcpError('connect-failed', 'a TcpTransport connects once; create another one')
    }
    this.#phase = 'connecting'
    this.#events = events
    this.#domain = target.domain
    // A caller's signal (a Connection gives none) stops the connect like destroy() does.
    const signal = target.signal
    const onAbort = () => this.destroy(signal?.reason)
    try {
      signal?.throwIfAborted()
      signal?.addEventListener('abort', onAbort, { once: true })
      // A service with a port (or a redirect) needs no lookup: no await before the socket.
      const found = this.#targets(target)
      const targets = Array.isArray(found) ? found : await this.#interruptible(found)
      const failures: { target: TcpTarget; error: unknown }[] = []
      for (const candidate of targets) {
        this.#throwIfStopped()
        try {
          const socket = await this.#open(candidate)
          this.#socket = socket
          this.#remote = candidate
          this.#secure = candidate.tls === 'direct'
          this.#verified = this.#secure && (socket as TLSSocket).authorized === true
          if (!this.#secure && !this.allowPlaintext) this.#guard = new PlaintextGuard()
          this.#phase = 'open'
          this.#attach(socket)
          return
        } catch (error) {
          this.#throwIfStopped()
          failures.push({ target: candidate, error })
        }
      }
      throw this.#connectFailure(failures)
    } catch (error) {
      this.#socket?.destroy()
      this.#finish(error instanceof Error ? error : new Error(String(error)))
      throw error
    } finally {
      signal?.removeEventListener('abort', onAbort)
      this.#interrupt = this.#stopped = undefined
    }
  }

  /** Where to connect: a redirect, the service's host and port, or SRV (RFC 6120 §3.2). */
  #targets(target: ConnectTarget): TcpTarget[] | Promise<TcpTarget[]> {
    if (target.host !== undefined) {
      // A see-other-host redirect (RFC 6120 §4.9.3.19) names a host and maybe a port; the
      // new stream starts over with STARTTLS and is still checked against the domain.
      return [{ host: target.host, port: target.port ?? DEFAULT_PORTS.starttls, tls: 'starttls' }]
    }
    const service = parseService(target.service ?? `xmpp://${hostPart(target.domain)}`)
    if (service.port !== undefined) {
      return [{ host: service.host, port: service.port, tls: service.tls }]
    }
    return resolveTargets(service.host, service.tls, this.#options.resolver)
  }

  #connectFailure(failures: { target: TcpTarget; error: unknown }[]): Error {
    // A certificate that does not verify says more than a refused port elsewhere.
    const tls = failures.find((f) => f.error instanceof TLSError)
    if (tls) return tls.error as TLSError
    const list = failures
      .map((f) => `${hostPart(f.target.host)}:${f.target.port} (${describe(f.error)})`)
      .join(', ')
    const cause =
      failures.length === 1 ? failures[0]?.error : new AggregateError(failures.map((f) => f.error))
    return new TcpError('connect-failed', `could not connect to ${this.#domain}: ${list}`, cause)
  }

  /** Opens one TCP connection, with the TLS handshake first for direct TLS. */
  #open(target: TcpTarget): Promise<Socket> {
    const direct = target.tls === 'direct'
    const domain = this.#domain
    return new Promise<Socket>((resolve, reject) => {
      const socket = direct
        ? tlsConnect({
            ...tlsOptions(domain, this.#options.tls),
            host: target.host,
            port: target.port,
            // XEP-0368 §3: direct TLS announces the protocol with ALPN.
            ALPNProtocols: [ALPN_CLIENT],
          })
        : netConnect({ host: target.host, port: target.port })
      let reached = false
      let settled = false
      const ms = this.#options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT
      const timer =
        ms > 0
          ? setTimeout(
              () =>
                fail(
                  new TimeoutError(
                    `${hostPart(target.host)}:${target.port} did not answer within ${ms} ms`,
                  ),
                ),
              ms,
            )
          : undefined
      const done = () => {
        settled = true
        clearTimeout(timer)
        this.#interrupt = undefined
        socket.off('connect', onConnect)
        socket.off('close', onClose)
        socket.off(direct ? 'secureConnect' : 'connect', onReady)
      }
      const fail = (error: unknown) => {
        if (settled) return
        done()
        socket.destroy()
        reject(error)
      }
      const onConnect = () => {
        reached = true
      }
      const onReady = () => {
        if (settled) return
        if (direct && !(socket as TLSSocket).authorized && this.#options.tls?.insecure !== true) {
          fail(handshakeError((socket as TLSSocket).authorizationError, domain))
          return
        }
        done()
        // The transport's own error listener takes over (#attach does not add it): this one
        // would keep the whole attempt (timer, signal, promise) alive while online.
        socket.off('error', onError)
        OWNERS.set(socket, this)
        socket.on('error', onSocketError)
        resolve(socket)
      }
      const onError = (error: Error) =>
        fail(direct && reached ? handshakeError(error, domain) : error)
      const onClose = () =>
        fail(
          direct && reached
            ? new TLSError('tls-handshake', 'the server closed the connection during TLS setup')
            : new Error('the connection closed before it was established'),
        )
      socket.on('connect', onConnect)
      socket.on(direct ? 'secureConnect' : 'connect', onReady)
      socket.on('error', onError)
      socket.on('close', onClose)
      this.#interrupt = fail
    })
  }

  /**
   * Upgrades the connection to TLS after the server's `<proceed/>` (RFC 6120 §5.4.3.3), with
   * the same checks as direct TLS. Plaintext the server sent after `<proceed/>` is never
   * delivered. On failure the transport is closed: there is no going on in plaintext.
   */
  async startTls(): Promise<void> {
    if (this.#secure) {
      throw new TLSError(
        'starttls-failed',
        'the stream is already encrypted; STARTTLS over TLS is not allowed (XEP-0368 §3)',
      )
    }
    const raw = this.#socket
    if (this.#phase !== 'open' || !raw) {
      throw new TLSError('starttls-failed', 'cannot start TLS: the connection is closed')
    }
    this.#phase = 'upgrading'
    // From here on the raw socket carries TLS records only; bytes it already read and did
    // not hand over are plaintext from after <proceed/>, and are dropped with it.
    raw.off('data', onSocketData)
    raw.off('drain', onSocketDrain)
    raw.off('close', onSocketClose)
    const domain = this.#domain
    let secure: TLSSocket
    try {
      secure = await new Promise<TLSSocket>((resolve, reject) => {
        const socket = tlsConnect({ ...tlsOptions(domain, this.#options.tls), socket: raw })
        this.#socket = socket
        let settled = false
        // RFC 6120 §5.4.3.3: the handshake follows <proceed/> at once; a server that goes
        // silent instead must not hold the login forever.
        const ms = this.#options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT
        const timer = setTimeout(
          () =>
            fail(
              new TimeoutError(
                `the TLS handshake with ${domain} after <proceed/> did not finish within ${ms} ms`,
              ),
            ),
          ms,
        )
        const settle = () => {
          settled = true
          clearTimeout(timer)
          this.#interrupt = undefined
          socket.off('close', onClose)
          socket.off('secureConnect', onReady)
        }
        const fail = (error: unknown) => {
          if (settled) return
          settle()
          socket.destroy()
          reject(error)
        }
        const onReady = () => {
          if (!socket.authorized && this.#options.tls?.insecure !== true) {
            fail(handshakeError(socket.authorizationError, domain))
            return
          }
          settle()
          // As in #open(): hand over to the transport's error listener.
          socket.off('error', onError)
          OWNERS.set(socket, this)
          socket.on('error', onSocketError)
          resolve(socket)
        }
        const onError = (error: Error) => fail(handshakeError(error, domain))
        const onClose = () =>
          fail(
            new TLSError(
              'tls-handshake',
              'the server closed the connection during the TLS handshake',
            ),
          )
        socket.on('secureConnect', onReady)
        socket.on('error', onError)
        socket.on('close', onClose)
        this.#interrupt = fail
      })
    } catch (error) {
      this.#socket?.destroy()
      raw.destroy()
      this.#finish(error instanceof Error ? error : new Error(String(error)))
      throw error
    } finally {
      this.#interrupt = this.#stopped = undefined
    }
    this.#secure = true
    this.#verified = secure.authorized === true
    this.#guard = undefined
    this.#phase = 'open'
    this.#attach(secure)
    const held = this.#held
    this.#held = undefined
    if (held !== undefined) {
      secure.write(held.join(''))
      this.#events?.drain()
    }
  }

  write(data: string): boolean {
    if (this.#phase === 'upgrading') {
      this.#held ??= []
      this.#held.push(data)
      return false
    }
    const socket = this.#socket
    if (this.#phase !== 'open' || !socket || !socket.writable) return false
    if (this.#guard !== undefined) {
      const refused = this.#guard.check(data)
      if (refused !== undefined) {
        this.#refusePlaintext(refused)
        return false
      }
    }
    const ok = socket.write(data)
    if (!this.#tuned) this.#tune(socket)
    return ok
  }

  /**
   * TLS is required and not up: nothing of `data` is written, and the connection ends with
   * TLSError `tls-required`, whichever plugin tried to send in the clear.
   */
  #refusePlaintext(what: string): void {
    this.destroy(
      new TLSError(
        'tls-required',
        `refused to send ${what} to ${this.#domain} over a connection that is not encrypted: TLS is required (STARTTLS first; tcp({ allowPlaintext: true }) permits plaintext)`,
      ),
    )
  }

  /**
   * No Nagle delay (XMPP is request/response: a small stanza must not wait for the previous
   * one's ack) and TCP keepalive. On a plain socket it is done after the first write, so that
   * the stream header leaves without waiting for five setsockopt calls: with nothing in
   * flight, Nagle does not hold that first segment back.
   */
  #tune(socket: Socket): void {
    this.#tuned = true
    socket.setNoDelay(true)
    socket.setKeepAlive(true, KEEPALIVE_DELAY)
  }

  end(): void {
    if (this.#phase === 'open') this.#socket?.end()
    else this.destroy()
  }

  destroy(error?: Error): void {
    if (error) this.#error ??= error
    if (this.#phase === 'closed') return
    if (this.#phase === 'connecting' || this.#phase === 'upgrading') {
      this.#stopped ??= error ?? new ConnectionError('disconnected', 'the transport was destroyed')
      this.#interrupt?.(this.#stopped)
    }
    if (this.#phase === 'idle') {
      this.#finish(error)
      return
    }
    this.#socket?.destroy()
  }

  pause(): void {
    this.#paused = true
    if (this.#phase === 'open') this.#socket?.pause()
  }

  resume(): void {
    this.#paused = false
    if (this.#phase === 'open') this.#socket?.resume()
  }

  #attach(socket: Socket): void {
    // A TLS handshake has already written: tune now (a plain socket does it on first write).
    if (this.#secure) this.#tune(socket)
    socket.on('data', onSocketData)
    socket.on('drain', onSocketDrain)
    // 'error' is already onSocketError: #open() and startTls() switched to it.
    socket.on('close', onSocketClose)
    if (this.#paused) socket.pause()
  }

  static {
    // The socket's listeners are shared by every transport (closures per transport add up
    // over many idle connections); each finds its transport through OWNERS.
    // Bytes go to the connection as read: it decodes UTF-8 across chunk boundaries itself.
    onSocketData = function (this: Socket, chunk: Buffer): void {
      const transport = OWNERS.get(this)
      if (transport) transport.#events?.data(chunk)
    }
    onSocketDrain = function (this: Socket): void {
      const transport = OWNERS.get(this)
      if (transport) transport.#events?.drain()
    }
    onSocketError = function (this: Socket, error: Error): void {
      const transport = OWNERS.get(this)
      if (transport) transport.#error ??= error
    }
    onSocketClose = function (this: Socket): void {
      const transport = OWNERS.get(this)
      if (transport) transport.#finish(transport.#error)
    }
  }

  /**
   * Reports the close once. The report waits a turn of the event loop, so that a failure
   * thrown by connect() or startTls() reaches the connection first, with its own type.
   */
  #finish(error: Error | undefined): void {
    if (this.#phase === 'closed') return
    this.#phase = 'closed'
    this.#held = undefined
    this.#closedWith = error
    this.#markClosed?.(error)
    const events = this.#events
    if (events) setImmediate(() => events.close(error))
  }
}

function checkOptions(options: TcpOptions): void {
  const { connectTimeout, handshakeTimeout } = options
  if (connectTimeout !== undefined && !(connectTimeout >= 0 && connectTimeout < 2 ** 31)) {
    throw new TypeError('tcp: `connectTimeout` must be a number of milliseconds (0: none)')
  }
  if (handshakeTimeout !== undefined && !(handshakeTimeout > 0 && handshakeTimeout < 2 ** 31)) {
    throw new TypeError('tcp: `handshakeTimeout` must be a positive number of milliseconds')
  }
}

/** True for a TcpTransport, also one from another copy of this package. */
export function isTcpTransport(value: unknown): value is TcpTransport {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[BRAND] === true
  )
}

/**
 * The transport factory for createConnection():
 * `createConnection({ transport: tcp(), domain: 'example.com', plugins: [starttls] })`.
 */
export function tcp(options: TcpOptions = {}): TransportFactory {
  checkOptions(options)
  return () => new TcpTransport(options)
}

function hostPart(host: string): string {
  return isIpLiteral(host) && host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    return typeof code === 'string' && !error.message.includes(code)
      ? `${code}: ${error.message}`
      : error.message
  }
  return String(error)
}
