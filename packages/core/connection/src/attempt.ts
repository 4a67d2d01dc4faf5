import { Element, NS_STREAM, NS_STREAM_ERRORS } from '@core/xml'
import type { StreamParserHandlers, StreamParserOptions } from '@core/xml'
import { AbortError, ConnectionError, StreamError, TimeoutError, XMPPError } from '@core/errors'
import type { Connection, ConnectionTimeouts } from './connection.js'
import type { NegotiationContext, Negotiator, StreamFeature, WaitOptions } from './features.js'
import type { StreamReader } from './framing.js'
import type { DisconnectReason } from './hooks.js'
import { OutboundWriter, type RawTap } from './outbound-writer.js'
import type { ConnectionState } from './state.js'
import type { Transport, TransportEvents } from './transport.js'

const RESOLVED: Promise<void> = Promise.resolve()
/** A shared empty list, never written to. */
const NONE: never[] = Object.freeze([]) as never[]

/** What attempts read of their connection's options and (once composed) its registry. */
interface StreamConfig {
  readonly timeouts: Required<ConnectionTimeouts>
  readonly limits: StreamParserOptions | undefined
  readonly highWaterBytes: number
  features: readonly StreamFeature[]
  negotiator: Negotiator
  rawTaps: readonly RawTap[]
}

/** What an attempt needs of its connection beyond the public API. */
export interface AttemptHost extends StreamConfig {
  readonly connection: Connection
  readonly inboundIdle: boolean
  setState(state: ConnectionState, cause?: Error): void
  enqueue(element: Element): void
  send(element: Element): Promise<void>
  online(resumed: boolean): void
  report(error: unknown): void
}

type Phase = 'connect' | 'header' | 'close' | 'kill' | undefined

interface Waiter {
  match: (element: Element) => boolean
  resolve: (element: Element) => void
  reject: (error: Error) => void
  timer: ReturnType<typeof setTimeout>
  last: WaitOptions['last']
}

/**
 * One transport, its stream (restarted during negotiation) and negotiation, until the
 * transport closed: transport events, reader handler and NegotiationContext in one. One
 * timer guards the current phase (connect, peer's header, peer's close).
 */
export class Attempt implements TransportEvents, StreamParserHandlers, NegotiationContext {
  // Set by run(): the attempt exists before its transport.
  transport!: Transport
  writer!: OutboundWriter
  header: Record<string, string> = {}
  #completed: Set<string> | undefined
  resumed = false
  /** The first cause of the stream's end. */
  failure: XMPPError | undefined
  /** Why the stream ends, when the first cause said so itself. */
  endReason: DisconnectReason | undefined
  closing = false
  finished = false
  /** connect() failed: a new connect() (from a hook) does not join it. */
  failed = false
  cancelled: XMPPError | undefined
  readonly #host: AttemptHost
  #online = false
  /** Why negotiation was abandoned (drop, timeout, disconnect()), once it was. */
  #aborted: XMPPError | undefined
  /** `signal`, made when first read (most negotiations never read it). */
  #controller: AbortController | undefined
  /** Rejected on abort: negotiation's waits race it. Made on the first wait, dropped online. */
  #abort: { promise: Promise<never>; reject: (error: Error) => void } | undefined
  #parser: StreamReader | undefined
  /** Top-level elements' parent: namespace lookups see the stream's declarations. */
  #root = new Element('stream:stream')
  #footerSent = false
  #timer: ReturnType<typeof setTimeout> | undefined
  #phase: Phase
  #headerWait: ((error?: Error) => void) | undefined
  #waiters: Waiter[] = NONE
  /** Elements that came while negotiating and no wait took (yet). */
  #pending: Element[] = NONE
  #paused = false
  /** Input bytes read while a backlog (pending or queued elements) existed. */
  #backlogBytes = 0
  /** `true` once the stream ended; before, the wait for it (made on demand). */
  #end: { promise: Promise<void>; resolve: () => void } | true | undefined

  constructor(host: AttemptHost) {
    this.#host = host
  }

  /** Features that already ran, across restarts (dropped once online). */
  get completed(): Set<string> {
    this.#completed ??= new Set()
    return this.#completed
  }
  get connection(): Connection {
    return this.#host.connection
  }
  get domain(): string {
    return this.connection.domain
  }
  get features(): readonly StreamFeature[] {
    return this.#host.features
  }
  get signal(): AbortSignal {
    if (this.#online) return new AbortController().signal
    if (!this.#controller) {
      this.#controller = new AbortController()
      if (this.#aborted) this.#controller.abort(this.#aborted)
    }
    return this.#controller.signal
  }
  get writable(): boolean {
    return this.transport !== undefined && !this.finished && !this.failure && !this.closing
  }

  // A feature that outlived its attempt must not touch a later attempt's stream.
  send(element: Element): Promise<void> {
    return this.#aborted ? Promise.reject(this.#aborted) : this.#host.send(element)
  }
  waitFor(match: (element: Element) => boolean, options: WaitOptions = {}): Promise<Element> {
    return this.#aborted ? Promise.reject(this.#aborted) : this.#waitFor(match, options)
  }
  restart(): Promise<void> {
    return this.#aborted ? Promise.reject(this.#aborted) : this.#openStream()
  }

  /** Once: negotiation's waits reject with `reason` (then run() tears the attempt down). */
  #abandon(reason: XMPPError): void {
    if (this.#online || this.#aborted) return
    this.#aborted = reason
    this.#abort?.reject(reason)
    this.#controller?.abort(reason)
  }

  /** Settles like `promise`, or rejects as soon as negotiation is abandoned. */
  #race<T>(promise: Promise<T>): Promise<T> {
    if (this.#online) return promise
    if (this.#aborted) {
      // What `promise` does later is superseded, not an unhandled rejection.
      promise.then(undefined, superseded)
      return Promise.reject(this.#aborted)
    }
    if (!this.#abort) {
      let reject: (error: Error) => void = superseded
      const promise = new Promise<never>((_, fail) => {
        reject = fail
      })
      this.#abort = { promise, reject }
    }
    return Promise.race([promise, this.#abort.promise])
  }

  /** Connects `transport` and negotiates; resolves once online and the hooks ran. */
  async run(
    transport: Transport,
    host: string | undefined,
    port: number | undefined,
    mayRedirect: boolean,
  ): Promise<void> {
    const { timeouts, negotiator } = this.#host
    const connection = this.connection
    this.transport = transport
    this.writer = new OutboundWriter(transport, transport.framing, this.#host.rawTaps)
    this.#arm('connect', timeouts.connect, () =>
      this.#abandon(
        new TimeoutError(`transport did not connect within ${timeouts.connect} ms`, 'connect'),
      ),
    )
    try {
      // No signal: an abandoned connect is stopped by end() (see the catch below).
      const { service, domain } = connection
      await this.#race(transport.connect({ service, domain, host, port }, this))
      this.#disarm('connect')
      this.#host.setState('negotiating')
      await this.#openStream()
      await this.#race(negotiator.negotiate(this))
      if (this.finished || this.failure) throw this.failure ?? closedError()
      // Elements no feature took go through the inbound pipeline now, in order.
      const pending = this.#pending
      this.#pending = NONE
      this.#online = true
      this.#abort = this.#controller = this.#completed = undefined
      this.#host.online(this.resumed)
      for (const element of pending) {
        if (this.failure) break
        this.#host.enqueue(element)
      }
      this.backlogChanged()
      if (this.finished || this.failure) throw this.failure ?? closedError()
      await connection.hooks.emit('online', { resumed: this.resumed })
    } catch (error) {
      this.#disarm('connect')
      const typed = this.failure ?? toXMPPError(error)
      if (!this.finished) {
        if (!this.failure && this.#parser) this.#writeFooter()
        const redirect = mayRedirect && isRedirect(typed)
        if (!redirect) this.failed = true
        this.#teardown(typed, false, redirect ? 'redirect' : 'connect')
      }
      await this.ended()
      throw typed
    }
  }

  cancel(error: XMPPError): void {
    if (this.finished) return
    this.cancelled = error
    this.endReason ??= 'stopped'
    this.#abandon(error)
  }

  shutdown(): Promise<void> {
    if (this.finished || this.closing) return this.ended()
    this.endReason ??= 'stopped'
    this.#host.setState('disconnecting')
    this.closing = true
    this.#armCloseDeadline()
    if (this.#parser?.stopped === false) this.#writeFooter()
    else this.transport.end()
    return this.ended()
  }

  /** Resolves once the stream ended and the `disconnected` hooks ran. */
  ended(): Promise<void> {
    if (this.#end === true) return RESOLVED
    if (!this.#end) {
      let resolve = (): void => {}
      const promise = new Promise<void>((settle) => {
        resolve = settle
      })
      this.#end = { promise, resolve }
    }
    return this.#end.promise
  }

  /** Starts a stream (first or restart): fresh reader, our header, the peer's header. */
  #openStream(): Promise<void> {
    const { negotiator, timeouts, limits } = this.#host
    const connection = this.connection
    // First, so that a negotiator that throws here leaves no header wait behind.
    let ours: string
    try {
      ours = this.transport.framing.open(negotiator.streamAttributes(connection))
    } catch (error) {
      return Promise.reject(error)
    }
    this.#parser?.stop()
    this.#pending = NONE
    this.#root = new Element('stream:stream')
    this.header = {}
    this.#parser = this.transport.framing.reader(this, connection.xmlns, limits)
    const header = new Promise<void>((resolve, reject) => {
      const timeout = timeouts.negotiation
      this.#arm('header', timeout, () =>
        reject(new TimeoutError(`no stream header within ${timeout} ms`, 'negotiation')),
      )
      this.#headerWait = (error) => {
        this.#disarm('header')
        if (error) reject(error)
        else resolve()
      }
    })
    this.writer.writeRaw(ours)
    return this.#race(header)
  }

  // TransportEvents.
  data(chunk: Uint8Array | string): void {
    if (this.finished) return
    const taps = this.#host.rawTaps
    for (let i = 0; i < taps.length; i++) (taps[i] as RawTap)('in', chunk)
    this.#parser?.write(chunk)
    if (this.#pending.length > 0 || !this.#host.inboundIdle) {
      // A backlog waits: count what arrives (per chunk, an upper bound) and pause past the mark.
      this.#backlogBytes += chunk.length
      if (this.#backlogBytes > this.#host.highWaterBytes && !this.#paused && !this.finished) {
        this.#paused = true
        this.transport.pause?.()
      }
    }
  }

  close(error?: Error): void {
    if (this.finished) return
    const clean = this.closing && !this.failure
    const failure =
      this.failure ??
      (clean
        ? undefined
        : error instanceof XMPPError
          ? error
          : new ConnectionError(
              'disconnected',
              error ? `the transport failed: ${error.message}` : 'the transport closed',
              error,
            ))
    if (!this.#online) {
      this.failure ??= failure
      this.#abandon(this.failure ?? new AbortError('the operation was aborted'))
      return
    }
    this.#teardown(failure, clean)
  }

  drain(): void {
    if (!this.finished) this.writer.drained()
  }

  /** After the backlog shrank: once it is empty, count afresh and read again. */
  backlogChanged(): void {
    if (this.#pending.length > 0 || !this.#host.inboundIdle) return
    this.#backlogBytes = 0
    if (this.#paused) {
      this.#paused = false
      this.transport.resume?.()
    }
  }

  // StreamParserHandlers (a stopped reader calls none).
  streamStart(attrs: Record<string, string>): void {
    const xmlns = this.connection.xmlns
    // RFC 6120 §4.9.3.10: our content namespace as default.
    if (attrs.xmlns !== undefined && attrs.xmlns !== xmlns) {
      const message = `peer opened a stream with content namespace "${attrs.xmlns}"`
      this.fail(new StreamError('invalid-namespace', message))
    } else if (attrs.version !== undefined && !attrs.version.startsWith('1.')) {
      this.fail(new StreamError('unsupported-version', `peer speaks XMPP version ${attrs.version}`))
    } else this.#started(attrs)
  }

  #started(attrs: Record<string, string>): void {
    const xmlns = this.connection.xmlns
    this.header = attrs
    // Shares the header's attributes when the peer declared its namespace: one copy, not two.
    this.#root.attrs = attrs.xmlns === undefined ? { ...attrs, xmlns } : attrs
    const wait = this.#headerWait
    this.#headerWait = undefined
    wait?.()
    void this.connection.hooks.emit('stream-start', { attrs })
  }

  element(element: Element): void {
    element.parent = this.#root
    if (this.#offer(element)) return
    if (element.getName() === 'error' && element.getNS() === NS_STREAM) this.#onStreamError(element)
    else if (this.#online) this.#host.enqueue(element)
    // Kept for a wait or for once online (XEP-0198 resends after <resumed/>); bounded in data().
    else if (this.#pending === NONE) this.#pending = [element]
    else this.#pending.push(element)
  }

  streamEnd(): void {
    if (this.closing) this.transport.end()
    else {
      // RFC 6120 §4.4: the peer closed; close ours and the transport.
      this.endReason ??= 'peer-closed'
      this.fail(new ConnectionError('disconnected', 'the peer closed the stream'))
    }
  }

  error(error: StreamError): void {
    this.fail(error)
  }

  #onStreamError(element: Element): void {
    let condition = 'undefined-condition'
    let text: string | undefined
    for (const child of element.getChildElements()) {
      if (child.getNS() !== NS_STREAM_ERRORS) continue
      if (child.getName() === 'text') text = child.getText()
      else condition = child.getName()
    }
    const message = `the peer closed the stream: ${condition}${text ? ` (${text})` : ''}`
    const details = text === undefined ? {} : { text }
    // RFC 6120 §4.9.1.1: after a stream error, close and act on nothing more.
    this.fail(new StreamError(condition, message, { remote: true, element, ...details }))
  }

  /** Ends the stream with `error` (ours goes to the peer), then closes; the first cause wins. */
  fail(error: XMPPError, appCondition?: Element): void {
    if (this.failure || this.finished || !this.transport) return
    this.failure = error
    this.#parser?.stop()
    if (error instanceof StreamError && !error.remote) {
      const xmlns = this.connection.xmlns
      const app = appCondition && this.transport.framing.element(appCondition, xmlns)
      this.writer.writeRaw(
        this.transport.framing.streamError(error.condition ?? 'undefined-condition', app),
      )
    }
    this.#writeFooter()
    this.transport.end()
    this.#armCloseDeadline()
    this.#rejectWaits(error)
  }

  /** Our close, at most once per stream. */
  #writeFooter(): void {
    if (this.#footerSent || this.finished) return
    this.#footerSent = true
    this.writer.writeRaw(this.transport.framing.close)
  }

  /** A hostile peer may never close: the transport is destroyed after the close timeout. */
  #armCloseDeadline(): void {
    if (this.#phase === 'close' || this.#phase === 'kill') return
    const timeout = this.#host.timeouts.close
    this.#arm('close', timeout, () => {
      if (this.finished) return
      if (this.closing) {
        this.endReason = 'close-timeout'
        const message = `the peer did not close its stream within ${timeout} ms`
        this.failure ??= new TimeoutError(message, 'close')
      }
      this.transport.destroy()
      this.close()
    })
  }

  #arm(phase: Phase, ms: number, fire: () => void): void {
    clearTimeout(this.#timer)
    this.#phase = phase
    this.#timer = setTimeout(() => {
      this.#phase = this.#timer = undefined
      fire()
    }, ms)
  }

  #disarm(phase: Phase): void {
    if (this.#phase !== phase) return
    clearTimeout(this.#timer)
    this.#phase = this.#timer = undefined
  }

  /**
   * Ends the attempt and reports the disconnection once. `kind`: 'drop' (was online),
   * 'connect' (run() throws it itself), 'redirect' (nothing reported, the session goes on).
   */
  #teardown(error: XMPPError | undefined, clean: boolean, kind = 'drop'): void {
    this.finished = true
    this.#parser?.stop()
    const failure = error ?? closedError()
    this.#abandon(failure)
    this.transport.end()
    this.#arm('kill', this.#host.timeouts.close, () => this.transport.destroy())
    ;(this.#timer as { unref?: () => void }).unref?.()
    this.#rejectWaits(failure)
    // Negotiation's leftovers were never the app's; queued inbound elements are still handled.
    this.#pending = NONE
    this.#paused = false
    const unsent = 'the stream closed before the element was written'
    this.writer.fail(error ?? new ConnectionError('not-connected', unsent))
    const connection = this.connection
    this.#host.setState('disconnected', error)
    if (kind === 'redirect') {
      this.#markEnded()
      return
    }
    // A drop while connect() awaits 'online' hooks ends that call too (see `failed`).
    this.failed = true
    const reason = this.endReason ?? reasonOf(error)
    const stopped = reason === 'stopped' || reason === 'close-timeout'
    // Only to an `error` hook: the `disconnected` hook and pending promises carry it anyway.
    const { hooks } = connection
    if (kind === 'drop' && error && !stopped && hooks.has('error')) this.#host.report(error)
    // A stream error ends the session too (RFC 6120 §4.9.1.1; XEP-0198 §5 resumes only drops).
    const resumable = connection.resumable && !stopped && reason !== 'stream-error'
    const done = hooks.emit('disconnected', { error, clean, reason, resumable })
    // Now, whatever the `disconnected` handlers do (they may reconnect).
    if (!resumable) connection.endSession(error)
    if (done) done.then(this.#markEnded.bind(this), this.#markEnded.bind(this))
    else this.#markEnded()
  }

  #markEnded(): void {
    const end = this.#end
    this.#end = true
    if (end && end !== true) end.resolve()
  }

  /** The first kept or next element `match` accepts; after a failure, only a kept one. */
  #waitFor(match: (element: Element) => boolean, options: WaitOptions): Promise<Element> {
    for (let i = 0; i < this.#pending.length; i++) {
      const element = this.#pending[i] as Element
      if (!match(element)) continue
      this.#pending.splice(i, 1)
      if (endsStream(options.last, element)) {
        this.#parser?.stop()
        this.#pending = NONE
      }
      return Promise.resolve(element)
    }
    if (this.finished || this.failure) return Promise.reject(this.failure ?? closedError())
    const timeout = options.timeout ?? this.#host.timeouts.negotiation
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve,
        reject,
        last: options.last,
        timer: setTimeout(() => {
          this.#drop(waiter)
          reject(new TimeoutError(`the peer did not answer within ${timeout} ms`, 'negotiation'))
        }, timeout),
      }
      this.#waiters = this.#waiters === NONE ? [waiter] : [...this.#waiters, waiter]
    })
  }

  /** True when a wait took the element (or its matcher threw: that wait fails, it drops). */
  #offer(element: Element): boolean {
    for (const waiter of this.#waiters) {
      let matched: boolean
      try {
        matched = waiter.match(element)
      } catch (error) {
        this.#drop(waiter)
        waiter.reject(toXMPPError(error))
        return true
      }
      if (!matched) continue
      this.#drop(waiter)
      if (endsStream(waiter.last, element)) this.#parser?.stop()
      waiter.resolve(element)
      return true
    }
    return false
  }

  #drop(waiter: Waiter): void {
    clearTimeout(waiter.timer)
    const rest = this.#waiters.filter((w) => w !== waiter)
    this.#waiters = rest.length === 0 ? NONE : rest
  }

  #rejectWaits(error: Error): void {
    const waiters = this.#waiters
    this.#waiters = NONE
    for (const waiter of waiters) {
      clearTimeout(waiter.timer)
      waiter.reject(error)
    }
    const header = this.#headerWait
    this.#headerWait = undefined
    header?.(error)
  }
}

function superseded(): void {}

function endsStream(last: WaitOptions['last'], element: Element): boolean {
  return typeof last === 'function' ? last(element) : last === true
}

/** RFC 6120 §4.9.3.19: the peer asks us to connect elsewhere. */
export function isRedirect(error: unknown): error is StreamError {
  return error instanceof StreamError && error.remote && error.condition === 'see-other-host'
}

function reasonOf(error: XMPPError | undefined): DisconnectReason {
  if (error === undefined) return 'stopped'
  if (error instanceof StreamError) return 'stream-error'
  if (error instanceof TimeoutError) return 'timeout'
  if (error instanceof ConnectionError && error.code === 'stopped') return 'stopped'
  return 'dropped'
}

function closedError(): ConnectionError {
  return new ConnectionError('disconnected', 'the connection closed')
}

export function toXMPPError(error: unknown): XMPPError {
  if (error instanceof XMPPError) return error
  const message = error instanceof Error ? error.message : String(error)
  return new ConnectionError('transport', message, error)
}
