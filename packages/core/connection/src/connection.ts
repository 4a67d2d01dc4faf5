import { Element } from '@core/xml'
import { ConnectionError, JIDError, StreamError, TimeoutError, XMPPError } from '@core/errors'
import type { NegotiationContext, WaitOptions } from './features.js'
import { Cancellation } from './cancellation.js'
import { type DisconnectReason, type HookMap, type HookName, Hooks } from './hooks.js'
import { JID } from '@core/jid'
import { InboundContext, OutboundContext, Pipeline } from './middleware.js'
import { NS_CLIENT, NS_STANZA_ERRORS, NS_STREAM, NS_STREAM_ERRORS } from '@core/xml'
import type { AnyPlugin, ApiOf, ApisOf } from './plugin.js'
import type { ConnectionState } from './state.js'
import type { StreamParserHandlers, StreamParserOptions } from '@core/xml'
import type { Transport, TransportEvents, TransportFactory } from './transport.js'
import type { Framing, StreamReader } from './framing.js'
import { PluginRegistry, type RegistryHost } from './plugin-registry.js'
import { OutboundWriter, settledOf } from './outbound-writer.js'
import { NegotiationWaits } from './negotiation-waits.js'
import { InboundQueue, type InboundSteps, isPromise } from './inbound-queue.js'
import { reportToStderr } from './error-report.js'
import { parseRedirect } from './redirect.js'

export interface ConnectionTimeouts {
  /** Opening the transport. Default 10 s. */
  connect?: number
  /** Each wait during negotiation (a header, a feature reply). Default 10 s. */
  negotiation?: number
  /** Waiting for the peer's `</stream:stream>` after ours. Default 2 s. */
  close?: number
  /** An async plugin setup. Default 5 s. */
  pluginSetup?: number
}

export interface ConnectionOptions<T extends readonly AnyPlugin[] = readonly AnyPlugin[]> {
  /** Creates the transport for each connection attempt. */
  transport: TransportFactory
  /** The XMPP domain (client: the server's domain; component: the component's name). */
  domain: string
  /** The service address handed to the transport, e.g. `xmpp://example.com:5222`. */
  service?: string
  /** `xml:lang` of our stream header. */
  lang?: string
  /** Plugins, in registration order. Their APIs appear on `connection.plugins`. */
  plugins?: T
  /** Reader limits (stanza size, depth, attributes). */
  limits?: StreamParserOptions
  timeouts?: ConnectionTimeouts
  /** How many see-other-host redirects connect() follows. Default 3. */
  maxRedirects?: number
  /**
   * Input bytes buffered while a handler is busy (or during negotiation) before the
   * transport is paused. The reader's elements take many times their size in memory, so
   * this bounds the heap an unread backlog can take. Default 1 MiB.
   */
  inboundHighWaterBytes?: number
  /**
   * Where errors go that no `error` hook took: a failing handler, plugin or hook. Default:
   * one line on stderr (class, code, condition, first line of the message; never element
   * content). Errors never vanish.
   */
  reportError?: (error: Error) => void
}

const RESOLVED: Promise<void> = Promise.resolve()
let newStreamEvents: (connection: Connection) => StreamEvents
let newTransportEvents: (connection: Connection, transport: Transport) => TransportEvents
let newHooks: (connection: Connection) => Hooks
let newInternals: (connection: Connection) => InboundSteps & RegistryHost & { endStream(): void }

/**
 * The end of one stream, as a promise made only when someone waits for it (most streams of
 * an idle client never end while it runs).
 */
class StreamEnd {
  #done = false
  #promise: Promise<void> | undefined
  #resolve: (() => void) | undefined
  wait(): Promise<void> {
    if (this.#done) return RESOLVED
    this.#promise ??= new Promise((resolve) => {
      this.#resolve = resolve
    })
    return this.#promise
  }
  mark(): void {
    this.#done = true
    this.#resolve?.()
  }
}
const NO_STREAM = new StreamEnd()
NO_STREAM.mark()

/** The reader's handlers for one stream; `parser` is set right after the reader is made. */
interface StreamEvents extends StreamParserHandlers {
  parser: StreamReader | undefined
}

/**
 * One XMPP stream over one transport at a time, with its plugin registry. connect() may be
 * called again after a disconnection: plugins and their state carry over.
 */
export class Connection<A extends object = Record<string, unknown>> {
  readonly domain: string
  readonly service: string | undefined
  readonly lang: string | undefined
  readonly hooks: Hooks
  /** The APIs of the registered plugins, keyed by plugin name. */
  readonly plugins: A
  /** Our address once bound (set by the bind feature, or by the component negotiator). */
  jid: JID | undefined = undefined
  /**
   * Set by a plugin that can resume the session after a drop (stream management): then a
   * disconnection does not end the session, and `session-end` is left to that plugin.
   */
  resumable = false

  #state: ConnectionState = 'disconnected'
  // What connect() needs of the options (not the options object: it holds the plugin list).
  readonly #newTransport: TransportFactory
  readonly #maxRedirects: number
  readonly #limits: StreamParserOptions | undefined
  readonly #highWaterBytes: number
  readonly #timeouts: Required<ConnectionTimeouts>
  readonly #registry: PluginRegistry
  /** The registry's taps, read per element once composed. */
  #handled: ((ctx: InboundContext) => void)[] = []
  #rawTaps: ((direction: 'in' | 'out', data: string | Uint8Array) => void)[] = []
  #connecting: Promise<void> | undefined
  /** Set by disconnect() while connecting: the attempt stops with this error. */
  #cancelled: XMPPError | undefined
  /** Increments per transport: completions of an older stream's elements are ignored. */
  #generation = 0
  #footerSent = false
  /** Destroys the transport if the peer has not closed within the close timeout. */
  #closeTimer: ReturnType<typeof setTimeout> | undefined
  #disposing: Promise<void> | undefined

  /** The composed middleware; undefined when no plugin added any. */
  #inbound: Pipeline<InboundContext, Connection<A>> | undefined
  #outbound: Pipeline<OutboundContext, Connection<A>> | undefined

  // Per-stream state.
  #transport: Transport | undefined
  #parser: StreamReader | undefined
  /** The current transport's framing (RFC 6120 XML stream unless it brings another). */
  // Set from the transport at each connect(), before anything is read or written.
  #framing!: Framing
  #root: Element = new Element('stream:stream')
  #header: Record<string, string> = {}
  /** Settles the wait for the peer's stream header (with an error: it failed). */
  #headerWaiter: ((error?: Error) => void) | undefined
  readonly #waits: NegotiationWaits
  /** Inbound elements, handled one at a time (they may outlive their stream). */
  readonly #inQueue: InboundQueue
  #paused = false
  /** Input bytes read while a backlog (pending or queued elements) existed. */
  #backlogBytes = 0
  readonly #writer = new OutboundWriter()
  /** The last valid `from` seen, and its JID (see #checkFrom). */
  #lastFrom: string | undefined
  #lastFromJid: JID | undefined
  /** disconnect() sent our close and waits for the peer's. */
  #closing = false
  #failure: XMPPError | undefined
  /** The current stream's end, made when first needed (a wait, or the teardown). */
  #end: StreamEnd | undefined = NO_STREAM
  #attempt: Cancellation | undefined
  /** The attempt in flight failed: a connect() now (from a hook) starts a new one. */
  #connectFailed = false
  /** Why the current stream ends, when the first cause said so itself (see #teardown). */
  #endReason: DisconnectReason | undefined
  /** The current session's end (connection.signal); created on first use. */
  #session: Cancellation | undefined
  readonly #reportError: (error: Error) => void

  constructor(options: ConnectionOptions) {
    this.#newTransport = options.transport
    this.#maxRedirects = options.maxRedirects ?? 3
    this.#limits = options.limits
    this.#highWaterBytes = options.inboundHighWaterBytes ?? 1_048_576
    this.domain = options.domain
    this.service = options.service
    this.lang = options.lang
    this.#timeouts = {
      connect: options.timeouts?.connect ?? 10_000,
      negotiation: options.timeouts?.negotiation ?? 10_000,
      close: options.timeouts?.close ?? 2_000,
      pluginSetup: options.timeouts?.pluginSetup ?? 5_000,
    }
    this.#reportError = options.reportError ?? reportToStderr
    // One object with methods serves the inbound queue, the negotiation waits and the
    // registry (closures per connection add up over many idle connections).
    const internals = newInternals(this as unknown as Connection)
    this.#waits = new NegotiationWaits(internals)
    this.#inQueue = new InboundQueue(internals)
    this.hooks = newHooks(this as unknown as Connection)
    this.plugins = {} as A
    this.#registry = new PluginRegistry(this as unknown as Connection, internals)
    try {
      for (const plugin of options.plugins ?? []) this.#registry.use(plugin)
    } catch (error) {
      // The caller gets no connection: the plugins already set up are torn down (in
      // reverse order) rather than left running with nobody holding them.
      this.#disposing = this.#registry.teardown()
      throw error
    }
  }

  /**
   * The stream's content namespace: `jabber:client`, or what the negotiation strategy a
   * plugin brought says (a component's `jabber:component:accept`).
   */
  get xmlns(): string {
    return this.#registry.negotiator.xmlns ?? NS_CLIENT
  }

  get state(): ConnectionState {
    return this.#state
  }

  /**
   * The number of the current stream (connection attempt), as in `InboundContext.stream`:
   * it increments at every attempt. Stream management counts inbound stanzas per session
   * with it.
   */
  get stream(): number {
    return this.#generation
  }

  /**
   * Where the next connect() attempt goes instead of `service` (only its first try; a
   * see-other-host redirect still applies). Set by a plugin: stream management's preferred
   * `location` for resumption (XEP-0198 §5). One-shot: cleared when an attempt starts.
   */
  nextTarget: { host: string; port?: number | undefined } | undefined = undefined

  /** The transport of the current stream, if any. */
  get transport(): Transport | undefined {
    return this.#transport
  }

  /** The peer's stream header on the current stream. */
  get header(): Readonly<Record<string, string>> {
    return this.#header
  }

  /**
   * Aborted when the current session ends, with the cause as its `reason`: a StreamError
   * (with its condition), a ConnectionError (`disconnected` for a drop, `stopped` for the
   * app's own disconnect()), a TimeoutError. Race your own waits against it
   * (`AbortSignal.any`, or `signal.addEventListener('abort', ...)`) so that they end at once
   * with the real cause. A session ends when its stream ends, unless a plugin (stream
   * management) keeps it resumable; the next connect() after the end starts a new session
   * and a new signal.
   */
  get signal(): AbortSignal {
    this.#session ??= new Cancellation()
    return this.#session.signal
  }

  /**
   * Ends the session: pending requests fail with `cause` and `signal` aborts. The core calls
   * it when a stream ends and the session is not resumable; a plugin that kept a session
   * resumable calls it once it gives up on resuming.
   */
  endSession(cause?: XMPPError): void {
    const session = this.#session
    if (session?.aborted) return
    const error = cause ?? new ConnectionError('stopped', 'the connection was closed by the app')
    this.#session ??= new Cancellation()
    this.#session.abort(error)
    void this.hooks.emit('session-end', { error: cause })
  }

  /**
   * Registers a plugin. Its dependencies (plugin objects, or their with() variants) must
   * already be registered. Fails once the registry froze (at the first connect()). A plugin
   * whose setup throws leaves nothing behind; one whose dependency's setup is async is set
   * up once that finished.
   */
  use<P extends AnyPlugin>(plugin: P): Connection<A & { [K in P['name']]: ApiOf<P> }> {
    this.#registry.use(plugin)
    return this as unknown as Connection<A & { [K in P['name']]: ApiOf<P> }>
  }

  /** Resolves once every plugin's (possibly async) setup finished. */
  ready(): Promise<void> {
    return this.#registry.ready()
  }

  static {
    // Per stream, one small object rather than an object literal of closures (it lives as
    // long as the stream; idle connections add up); the reader calls them as methods. Events
    // of a stream that is no longer the current one are ignored.
    class ParserEvents implements StreamEvents {
      readonly #c: Connection
      parser: StreamReader | undefined = undefined
      constructor(connection: Connection) {
        this.#c = connection
      }
      streamStart(attrs: Record<string, string>): void {
        if (this.#c.#parser === this.parser) this.#c.#onStreamStart(attrs)
      }
      element(element: Element): void {
        if (this.#c.#parser === this.parser) this.#c.#onElement(element)
      }
      streamEnd(): void {
        if (this.#c.#parser === this.parser) this.#c.#onStreamEnd()
      }
      error(error: StreamError): void {
        if (this.#c.#parser === this.parser) this.#c.#fail(error)
      }
    }
    newStreamEvents = (connection) => new ParserEvents(connection)

    class ConnectionHooks extends Hooks {
      readonly #c: Connection
      constructor(connection: Connection) {
        super()
        this.#c = connection
      }
      protected override failed(error: unknown, hook: HookName): void {
        this.#c.#report(error, hook)
      }
    }
    newHooks = (connection) => new ConnectionHooks(connection)

    // What a transport reports, as methods of one object (closures here would share the
    // attempt's scope and keep it alive as long as the transport).
    class StreamTransportEvents implements TransportEvents {
      readonly #c: Connection
      readonly #t: Transport
      constructor(connection: Connection, transport: Transport) {
        this.#c = connection
        this.#t = transport
      }
      data(chunk: Uint8Array | string): void {
        this.#c.#onData(this.#t, chunk)
      }
      close(error?: Error): void {
        this.#c.#onTransportClose(this.#t, error)
      }
      drain(): void {
        if (this.#c.#transport === this.#t) this.#c.#writer.drained()
      }
    }
    newTransportEvents = (connection, transport) => new StreamTransportEvents(connection, transport)

    // What the inbound queue, the negotiation waits and the registry call back into.
    class Internals implements InboundSteps, RegistryHost {
      readonly #c: Connection
      readonly setupTimeout: number
      constructor(connection: Connection) {
        this.#c = connection
        this.setupTimeout = connection.#timeouts.pluginSetup
      }
      handle(ctx: InboundContext): void | Promise<void> {
        return this.#c.#handle(ctx)
      }
      failed(ctx: InboundContext, error: unknown): void {
        this.#c.#inboundFailed(ctx, error)
      }
      complete(ctx: InboundContext): void {
        this.#c.#complete(ctx)
      }
      drained(): void {
        this.#c.#backlogChanged()
      }
      endStream(): void {
        this.#c.#parser?.stop()
      }
      report(error: unknown): void {
        this.#c.#report(error)
      }
      inboundSettled(timeout: number): Promise<boolean> {
        return this.#c.#inQueue.settled(timeout)
      }
      fail(error: XMPPError, appCondition?: Element): void {
        if (this.#c.#transport) this.#c.#fail(error, appCondition)
      }
    }
    newInternals = (connection) => new Internals(connection)
  }

  #streamEnd(): StreamEnd {
    this.#end ??= new StreamEnd()
    return this.#end
  }

  /** Composes the pipelines once, after every setup finished; later extensions fail. */
  #compose(): void {
    const registry = this.#registry
    if (registry.composed) return
    registry.composed = true
    const { inboundLayers, outboundLayers } = registry
    const self = this as Connection<A>
    if (inboundLayers.length > 0) this.#inbound = new Pipeline(inboundLayers, this.#deliver, self)
    if (outboundLayers.length > 0)
      this.#outbound = new Pipeline(outboundLayers, this.#writeElement, self)
    // The pipelines keep their own copies; the registration lists are not read again.
    registry.inboundLayers = registry.outboundLayers = []
    registry.features = registry.features.slice()
    this.#handled = registry.handled
    this.#rawTaps = registry.rawTaps
  }

  /**
   * Opens the transport and negotiates the stream. Resolves when online; rejects with a
   * typed error (and the connection is disconnected) otherwise.
   */
  connect(): Promise<void> {
    if (this.#registry.disposed || this.#disposing) {
      return Promise.reject(new ConnectionError('disposed', 'the connection was disposed'))
    }
    // A second call while connecting joins the attempt in flight, unless that attempt
    // already failed (a 'disconnected' hook reconnecting): then a new one starts.
    if (this.#connecting && !this.#connectFailed) return this.#connecting
    if (this.#state !== 'disconnected') {
      return Promise.reject(
        new ConnectionError('not-connected', `connect() called while ${this.#state}`),
      )
    }
    this.#registry.freeze()
    this.#cancelled = undefined
    this.#connectFailed = false
    // The previous session ended: this connection starts a new one (and a new signal).
    if (this.#session?.aborted) this.#session = undefined
    // One turn before the attempt starts: connect() returns before any state change, and
    // the attempt is registered before hooks run (a 'state' hook may call disconnect(); a
    // 'disconnected' hook that reconnects lets the old session end first).
    const connecting: Promise<void> = RESOLVED.then(() => this.#connectWithRedirects()).finally(
      () => {
        if (this.#connecting === connecting) this.#connecting = undefined
      },
    )
    this.#connecting = connecting
    return connecting
  }

  async #connectWithRedirects(): Promise<void> {
    // Without async setups there is nothing to wait for (and no reason to yield).
    if (this.#registry.hasAsyncSetups) await this.#registry.settled()
    this.#compose()
    const max = this.#maxRedirects
    const preferred = this.nextTarget
    this.nextTarget = undefined
    let host: string | undefined = preferred?.host
    let port: number | undefined = preferred?.port
    for (let count = 0; ; count++) {
      try {
        await this.#connectOnce(host, port, count < max)
        return
      } catch (error) {
        if (!isRedirect(error)) throw error
        const where = error.element?.getChild('see-other-host', NS_STREAM_ERRORS)?.getText() ?? ''
        const target = parseRedirect(where)
        if (!target) throw error
        if (count >= max) {
          throw new ConnectionError(
            'redirect-limit',
            `gave up after ${max} see-other-host redirects (last: ${where})`,
            error,
          )
        }
        host = target.host
        port = target.port
        await this.hooks.emit('redirect', { host, port, count: count + 1 })
      }
    }
  }

  async #connectOnce(
    host: string | undefined,
    port: number | undefined,
    mayRedirect: boolean,
  ): Promise<void> {
    if (this.#cancelled) throw this.#cancelled
    const attempt = new Cancellation()
    this.#attempt = attempt
    this.#failure = undefined
    this.#endReason = undefined
    this.#footerSent = false
    this.#generation++
    this.#end = undefined
    this.#setState('connecting')
    let transport: Transport
    try {
      transport = this.#newTransport()
    } catch (error) {
      this.#connectFailed = true
      this.#setState('disconnected', toXMPPError(error))
      this.#streamEnd().mark()
      throw toXMPPError(error)
    }
    this.#transport = transport
    this.#framing = transport.framing
    this.#writer.attach(transport, this.#framing, this.#rawTaps)
    const connectTimer = setTimeout(
      () =>
        attempt.abort(
          new TimeoutError(
            `transport did not connect within ${this.#timeouts.connect} ms`,
            'connect',
          ),
        ),
      this.#timeouts.connect,
    )
    try {
      await attempt.race(
        transport.connect(
          {
            service: this.service,
            domain: this.domain,
            host,
            port,
            // An AbortSignal only for a transport that reads it.
            get signal() {
              return attempt.signal
            },
          },
          newTransportEvents(this as unknown as Connection, transport),
        ),
      )
      clearTimeout(connectTimer)
      this.#setState('negotiating')
      const nc = this.#negotiationContext(transport, attempt)
      // Whatever a feature awaits (a TLS upgrade, a hash), a drop or a timeout ends it here.
      await this.#openStream()
      await attempt.race(this.#registry.negotiator.negotiate(nc))
      if (this.#transport !== transport || this.#failure) throw this.#failure ?? closedError()
      // Elements that arrived during negotiation and that no feature took go through the
      // inbound pipeline now, in order (one of them may still end the stream).
      const pending = this.#waits.takePending()
      // A plugin ended the previous session during this negotiation (stream management
      // whose resumption failed): the session now online is a new one, with a new signal.
      if (!nc.resumed && this.#session?.aborted) this.#session = undefined
      this.#setState('online')
      // Negotiation is over: nothing is aborted through the attempt any more.
      if (this.#attempt === attempt) this.#attempt = undefined
      for (const element of pending) {
        if (this.#failure) break
        this.#enqueue(element)
      }
      this.#backlogChanged()
      if (this.#transport !== transport || this.#failure) throw this.#failure ?? closedError()
      await this.hooks.emit('online', { resumed: nc.resumed })
    } catch (error) {
      clearTimeout(connectTimer)
      const typed = this.#failure ?? toXMPPError(error)
      const closed = this.#streamEnd()
      if (this.#transport === transport) {
        // A stream error was already sent by #fail(); otherwise close our stream politely.
        if (!this.#failure && this.#parser) this.#writeFooter()
        const redirect = mayRedirect && isRedirect(typed)
        if (!redirect) this.#connectFailed = true
        this.#teardown(typed, false, redirect ? 'redirect' : 'connect')
      }
      await closed.wait()
      throw typed
    }
  }

  #negotiationContext(transport: Transport, attempt: Cancellation): NegotiationContext {
    const self = this
    return {
      connection: this as unknown as Connection,
      transport,
      // An AbortSignal only for a feature that asks for it.
      get signal() {
        return attempt.signal
      },
      domain: this.domain,
      get header() {
        return self.#header
      },
      features: this.#registry.features,
      completed: new Set<string>(),
      resumed: false,
      // A feature still running after its attempt ended (it ignored the signal) must not
      // write into, read from or restart a later attempt's stream.
      send: (element) => (attempt.aborted ? abandoned(attempt) : this.#send(element, true)),
      waitFor: (match, options) =>
        attempt.aborted ? abandoned(attempt) : this.#waitFor(match, options),
      restart: () => (attempt.aborted ? abandoned(attempt) : this.#openStream()),
    }
  }

  /** Starts a stream (initially or on restart): fresh reader, our header, the peer's header. */
  #openStream(): Promise<void> {
    // First, so that a negotiator that throws here leaves no header wait behind.
    let ours: string
    try {
      ours = this.#framing.open(
        this.#registry.negotiator.streamAttributes(this as unknown as Connection),
      )
    } catch (error) {
      return Promise.reject(error)
    }
    this.#parser?.stop()
    this.#waits.clearPending()
    this.#root = new Element('stream:stream')
    this.#header = {}
    const events = newStreamEvents(this as unknown as Connection)
    const parser = this.#framing.reader(events, this.xmlns, this.#limits)
    events.parser = parser
    this.#parser = parser
    const header = new Promise<void>((resolve, reject) => {
      const timeout = this.#timeouts.negotiation
      const timer = setTimeout(
        () => reject(new TimeoutError(`no stream header within ${timeout} ms`, 'negotiation')),
        timeout,
      )
      this.#headerWaiter = (error) => {
        clearTimeout(timer)
        if (error) reject(error)
        else resolve()
      }
    })
    this.#writer.writeRaw(ours)
    // Ends with the attempt too (a drop, the connect timeout, disconnect()); the teardown
    // that follows rejects the wait itself.
    return this.#attempt ? this.#attempt.race(header) : header
  }

  #onStreamStart(attrs: Record<string, string>): void {
    // RFC 6120 §4.9.3.10: the stream element must be in the streams namespace with our
    // content namespace as default.
    if (attrs.xmlns !== undefined && attrs.xmlns !== this.xmlns) {
      this.#fail(
        new StreamError(
          'invalid-namespace',
          `peer opened a stream with content namespace "${attrs.xmlns}"`,
        ),
      )
      return
    }
    if (attrs.version !== undefined && !attrs.version.startsWith('1.')) {
      this.#fail(
        new StreamError('unsupported-version', `peer speaks XMPP version ${attrs.version}`),
      )
      return
    }
    this.#header = attrs
    // Top-level elements get this (childless) element as parent, so that namespace lookups
    // (getNS, is(name, ns)) see the stream's declarations without the stream holding them.
    // It shares the header's attributes object when the peer declared its content namespace
    // (as every server does): one copy per stream, not two.
    const root = new Element('stream:stream')
    root.attrs = attrs.xmlns === undefined ? { ...attrs, xmlns: this.xmlns } : attrs
    this.#root = root
    const waiter = this.#headerWaiter
    this.#headerWaiter = undefined
    waiter?.()
    void this.hooks.emit('stream-start', { attrs })
  }

  #onData(transport: Transport, chunk: Uint8Array | string): void {
    if (this.#transport !== transport) return
    for (let i = 0; i < this.#rawTaps.length; i++) {
      ;(this.#rawTaps[i] as (direction: 'in', data: string | Uint8Array) => void)('in', chunk)
    }
    this.#parser?.write(chunk)
    if (this.#waits.pendingCount > 0 || !this.#inQueue.idle) {
      // A backlog waits (a busy handler, or elements that arrived during negotiation): count
      // what arrives meanwhile, and stop reading past the high-water mark. Counted per chunk,
      // an upper bound of what the backlog holds.
      this.#backlogBytes += chunk.length
      if (this.#backlogBytes > this.#highWaterBytes && !this.#paused) {
        this.#paused = true
        this.#transport?.pause?.()
      }
    }
  }

  /** After the backlog shrank: once it is empty, count afresh and read again. */
  #backlogChanged(): void {
    if (this.#waits.pendingCount > 0 || !this.#inQueue.idle) return
    this.#backlogBytes = 0
    if (this.#paused) {
      this.#paused = false
      this.#transport?.resume?.()
    }
  }

  #onElement(element: Element): void {
    element.parent = this.#root
    if (this.#waits.offer(element, toXMPPError)) return
    if (element.getName() === 'error' && element.getNS() === NS_STREAM) {
      this.#onRemoteStreamError(element)
      return
    }
    if (this.#state === 'negotiating' || this.#state === 'connecting') {
      // Kept for a later waiter, or for the inbound pipeline once online (a server resends
      // unacknowledged stanzas right after <resumed/>). Bounded by bytes in #onData.
      this.#waits.keep(element)
      return
    }
    this.#enqueue(element)
  }

  #waitFor(match: (element: Element) => boolean, options: WaitOptions = {}): Promise<Element> {
    const closed = !this.#transport || this.#failure ? (this.#failure ?? closedError()) : undefined
    return this.#waits.wait(match, options, this.#timeouts.negotiation, closed)
  }

  #onRemoteStreamError(element: Element): void {
    let condition = 'undefined-condition'
    let text: string | undefined
    for (const child of element.getChildElements()) {
      if (child.getNS() !== NS_STREAM_ERRORS) continue
      if (child.getName() === 'text') text = child.getText()
      else condition = child.getName()
    }
    const error = new StreamError(
      condition,
      `the peer closed the stream: ${condition}${text ? ` (${text})` : ''}`,
      {
        remote: true,
        element,
        ...(text === undefined ? {} : { text }),
      },
    )
    // RFC 6120 §4.9.1.1: after a stream error the stream is closed; answer with ours and
    // act on nothing the peer sends after it.
    this.#fail(error)
  }

  #onStreamEnd(): void {
    if (this.#closing) {
      // Our close was answered: the stream is closed cleanly.
      this.#transport?.end()
      return
    }
    // RFC 6120 §4.4: the peer closed the stream; close ours and the transport.
    this.#endReason ??= 'peer-closed'
    this.#fail(new ConnectionError('disconnected', 'the peer closed the stream'))
  }

  /**
   * The stream ends with `error` (ours, the peer's stream error, or the peer's close): a
   * stream error we detected goes to the peer, then our close, the transport half-closed
   * (bounded), and every wait told why. The first cause wins.
   */
  #fail(error: XMPPError, appCondition?: Element): void {
    if (this.#failure) return
    this.#failure = error
    this.#parser?.stop()
    if (error instanceof StreamError && !error.remote) {
      this.#writer.writeRaw(
        this.#framing.streamError(
          error.condition ?? 'undefined-condition',
          appCondition === undefined ? undefined : this.#framing.element(appCondition, this.xmlns),
        ),
      )
    }
    this.#writeFooter()
    this.#endTransport()
    this.#rejectWaiters(error)
  }

  /** Our `</stream:stream>` (or the framing's close), at most once per stream. */
  #writeFooter(): void {
    if (this.#footerSent || !this.#transport) return
    this.#footerSent = true
    this.#writer.writeRaw(this.#framing.close)
  }

  /** Half-closes the transport after what we wrote (bounded: a hostile peer may never close). */
  #endTransport(): void {
    const transport = this.#transport
    if (!transport) return
    transport.end()
    this.#armCloseDeadline(transport)
  }

  #armCloseDeadline(transport: Transport): void {
    const timeout = this.#timeouts.close
    this.#closeTimer ??= setTimeout(() => {
      this.#closeTimer = undefined
      if (this.#transport !== transport) return
      if (this.#closing) {
        // The peer did not answer our close in time: not a clean close.
        this.#endReason = 'close-timeout'
        this.#failure ??= new TimeoutError(
          `the peer did not close its stream within ${timeout} ms`,
          'close',
        )
      }
      transport.destroy()
      this.#onTransportClose(transport)
    }, timeout)
  }

  #rejectWaiters(error: Error): void {
    this.#waits.rejectAll(error)
    const header = this.#headerWaiter
    this.#headerWaiter = undefined
    header?.(error)
  }

  #onTransportClose(transport: Transport, error?: Error): void {
    if (this.#transport !== transport) return
    const clean = this.#closing && !this.#failure
    const failure =
      this.#failure ??
      (clean
        ? undefined
        : // A transport that knows why it closed (a TLS failure) says so with a typed error.
          error instanceof XMPPError
          ? error
          : new ConnectionError(
              'disconnected',
              error ? `the transport failed: ${error.message}` : 'the transport closed',
              error,
            ))
    if (this.#state === 'connecting' || this.#state === 'negotiating') {
      // connect() is in flight: it tears down and throws (or follows a redirect) itself.
      this.#failure ??= failure
      this.#attempt?.abort(this.#failure)
      return
    }
    this.#teardown(failure, clean)
  }

  /**
   * Ends the current stream's state and reports the disconnection once. `kind`: 'drop'
   * (the stream was up), 'connect' (connect() fails and throws the error itself, so it is
   * not reported again), 'redirect' (connect() follows a see-other-host: nothing is
   * reported and the session does not end).
   */
  #teardown(
    error: XMPPError | undefined,
    clean: boolean,
    kind: 'drop' | 'connect' | 'redirect' = 'drop',
  ): void {
    const transport = this.#transport
    if (!transport) return
    this.#transport = undefined
    this.#parser?.stop()
    this.#parser = undefined
    const failure = error ?? closedError()
    this.#attempt?.abort(failure)
    this.#attempt = undefined
    clearTimeout(this.#closeTimer)
    this.#closeTimer = undefined
    this.#closing = false
    // Let what we wrote last (a stream error, our footer) go out, but not wait forever.
    transport.end()
    const closeTimeout = this.#timeouts.close
    const killer = setTimeout(() => transport.destroy(), closeTimeout)
    ;(killer as { unref?: () => void }).unref?.()
    const end = this.#streamEnd()
    this.#rejectWaiters(failure)
    // Elements of a negotiation that did not finish were never the app's. Elements already
    // queued for the inbound pipeline are still handled (and reported handled) in order.
    this.#waits.clearPending()
    this.#paused = false
    // What was not handed to the transport never will be: those send() calls reject.
    this.#writer.detach(
      error ??
        new ConnectionError('not-connected', 'the stream closed before the element was written'),
    )
    this.#setState('disconnected', error)
    if (kind === 'redirect') {
      end.mark()
      return
    }
    // A drop while connect() still awaits the 'online' hooks: that attempt is over, so a
    // connect() from a 'disconnected' handler starts a new one instead of joining it.
    if (this.#connecting) this.#connectFailed = true
    const reason = this.#endReason ?? reasonOf(error)
    const stopped = reason === 'stopped' || reason === 'close-timeout'
    // Reported to an `error` hook when there is one; the state and `disconnected` hooks,
    // connect() and every pending promise carry it anyway.
    if (kind === 'drop' && error && !stopped && this.hooks.has('error')) this.#report(error)
    // A stream error ends the session as well as the stream: the server does not keep it
    // for resumption (RFC 6120 §4.9.1.1; XEP-0198 §5 resumes after a drop, not after an error).
    const resumable = this.resumable && !stopped && reason !== 'stream-error'
    const done = this.hooks.emit('disconnected', { error, clean, reason, resumable })
    // Whatever the `disconnected` handlers do (they may start a new attempt), what waited
    // on this session learns now.
    if (!resumable) this.endSession(error)
    if (done) {
      const mark = () => end.mark()
      done.then(mark, mark)
    } else end.mark()
  }

  /**
   * Closes the stream cleanly: our `</stream:stream>`, then waits (bounded) for the peer's
   * before closing the transport. Reported with reason `stopped` (`close-timeout` when the
   * peer did not close in time).
   */
  async disconnect(): Promise<void> {
    // Also when there is no stream to close: a pending reconnection must not start one.
    void this.hooks.emit('stop', {})
    const connecting = this.#connecting
    if (connecting && this.#state !== 'online') {
      // Stop the attempt in flight; connect() rejects with this error.
      const error = new ConnectionError('stopped', 'disconnect() was called while connecting')
      this.#cancelled = error
      this.#endReason ??= 'stopped'
      this.#attempt?.abort(error)
      // connect()'s caller gets the attempt's outcome; disconnect() only waits for its end.
      await connecting.then(undefined, leftToConnectCaller)
      return
    }
    const transport = this.#transport
    if (!transport) {
      // Between a drop and a resumption: the app's stop ends the kept session for good.
      if (this.resumable) {
        this.resumable = false
        this.endSession(new ConnectionError('stopped', 'the connection was closed by the app'))
      }
      return
    }
    if (this.#closing) return this.#streamEnd().wait()
    if (this.#state === 'online' && this.hooks.has('closing')) {
      // Last words on the stream, while it is still online (XEP-0198 §4: a final ack).
      const closing = this.hooks.emit('closing', {})
      if (closing) await closing
      if (this.#transport !== transport || this.#closing) return this.#streamEnd().wait()
    }
    this.#endReason ??= 'stopped'
    this.#setState('disconnecting')
    this.#closing = true
    const closed = this.#streamEnd()
    this.#armCloseDeadline(transport)
    if (this.#parser?.stopped === false) this.#writeFooter()
    else transport.end()
    await closed.wait()
  }

  /**
   * Disconnects, then tears the plugins down in reverse registration order. Concurrent
   * calls share one teardown.
   */
  dispose(): Promise<void> {
    this.#disposing ??= this.disconnect().then(() => this.#registry.teardown())
    return this.#disposing
  }

  /**
   * Sends an element through the outbound pipeline, in any state: a plugin (stream
   * management) may hold it while there is no stream. Resolves once it was handed to the
   * transport, or, when a plugin tracks delivery, when that plugin says it was delivered.
   * Rejects with ConnectionError `not-connected` when the connection is not online and no
   * plugin took the element, and with the cause when the stream ends before it was
   * written. A middleware that drops an element (no next(), no delivery) resolves it.
   */
  send(element: Element): Promise<void> {
    if (!this.#registry.composed) {
      return Promise.reject(new ConnectionError('not-connected', 'send() before connect()'))
    }
    return this.#send(element, false)
  }

  /** `negotiation`: sent by stream negotiation (nc.send), allowed before online. */
  #send(element: Element, negotiation: boolean): Promise<void> {
    const ctx = new OutboundContext(element, negotiation)
    let result: void | Promise<void>
    try {
      result = this.#outbound ? this.#outbound.run(ctx) : this.#writeElement(ctx)
    } catch (error) {
      return Promise.reject(error)
    }
    if (result !== undefined && isPromise(result)) return result.then(() => settledOf(ctx))
    return settledOf(ctx)
  }

  /** Outbound terminal: serialize and queue for the per-tick write. */
  #writeElement(ctx: OutboundContext): void {
    if (
      !this.#transport ||
      this.#failure ||
      this.#closing ||
      (this.#state !== 'online' && !ctx.negotiation)
    ) {
      // Before online, only negotiation may write: a stanza there is a protocol error.
      throw new ConnectionError(
        'not-connected',
        `cannot send <${ctx.element.name}/> while ${this.#state}${
          this.#state === 'online' ? ' (closing)' : ''
        }: wait for connect() to resolve (or the 'online' hook)`,
      )
    }
    // Before online, negotiation is one element per round trip: written at once.
    this.#writer.queue(ctx, this.xmlns, this.#state !== 'online')
  }

  #enqueue(element: Element): void {
    this.#inQueue.push(new InboundContext(element, element.getName(), this.#generation))
  }

  /** Checks an inbound element, then runs it through the pipeline (InboundQueue calls it). */
  #handle(ctx: InboundContext): void | Promise<void> {
    const current = ctx.stream === this.#generation
    if (current && ctx.kind === 'stanza' && !this.#checkFrom(ctx)) return
    if (current && needsAnswer(ctx)) {
      // An iq request needs an answer addressed from its `to`: check it now (`from` was
      // checked above for every stanza).
      try {
        void ctx.to
      } catch (error) {
        this.#fail(
          new StreamError('improper-addressing', `iq with an invalid 'to': ${describe(error)}`),
        )
        return
      }
    }
    return this.#inbound ? this.#inbound.run(ctx) : this.#deliver(ctx)
  }

  /**
   * RFC 6120 §8.1.2.1: a stanza's `from` is a valid JID. Checked for every stanza, so that a
   * malformed one is treated the same whatever routes or handlers exist: the stream ends
   * with invalid-from. The last sender is cached (most traffic comes from few senders).
   */
  #checkFrom(ctx: InboundContext): boolean {
    const from = ctx.element.attrs.from
    if (typeof from !== 'string') return true
    if (from !== this.#lastFrom) {
      const jid = JID.tryParse(from)
      if (jid === undefined) {
        this.#fail(new StreamError('invalid-from', "stanza with an invalid 'from' address"))
        return false
      }
      this.#lastFrom = from
      this.#lastFromJid = jid
    }
    ctx.presetFrom(this.#lastFromJid)
    return true
  }

  #inboundFailed(ctx: InboundContext, error: unknown): void {
    if (error instanceof JIDError && ctx.stream === this.#generation) {
      const badFrom = safeInvalid(() => ctx.from)
      this.#fail(
        new StreamError(
          badFrom ? 'invalid-from' : 'improper-addressing',
          `stanza with an invalid address: ${error.message}`,
        ),
      )
      return
    }
    if (needsAnswer(ctx) && !ctx.handled) {
      ctx.handled = true
      this.#answerError(ctx, 'internal-server-error', 'wait')
    }
    this.#report(error)
  }

  /** After every middleware settled: answer unhandled requests, tell onHandled listeners. */
  #complete(ctx: InboundContext): void {
    if (
      !ctx.handled &&
      needsAnswer(ctx) &&
      ctx.stream === this.#generation &&
      this.#transport &&
      !this.#failure &&
      !this.#closing
    ) {
      // RFC 6120 §8.4: a request nobody handles gets service-unavailable.
      ctx.handled = true
      this.#answerError(ctx, 'service-unavailable', 'cancel')
    }
    for (let i = 0; i < this.#handled.length; i++) {
      try {
        ;(this.#handled[i] as (ctx: InboundContext) => void)(ctx)
      } catch (error) {
        this.#report(error)
      }
    }
  }

  #answerError(ctx: InboundContext, condition: string, type: string): void {
    if (ctx.stream !== this.#generation || !this.#transport) return
    // The answer comes from the address the request was sent to (a component serves many).
    const { id, from, to } = ctx.element.attrs
    const reply = new Element('iq', { type: 'error', id, to: from, from: to })
    reply.c('error', { type }).c(condition, { xmlns: NS_STANZA_ERRORS })
    this.send(reply).then(undefined, (error: unknown) => this.#report(error))
  }

  /** Inbound terminal: the app's catch-all hooks. */
  #deliver(ctx: InboundContext): void | Promise<void> {
    if (ctx.kind === 'stanza') {
      return this.hooks.emit('stanza', {
        element: ctx.element,
        name: ctx.name as HookMap['stanza']['name'],
      })
    }
    return this.hooks.emit('nonza', { element: ctx.element })
  }

  #setState(state: ConnectionState, cause?: Error): void {
    const previous = this.#state
    if (previous === state) return
    this.#state = state
    void this.hooks.emit('state', { state, previous, cause })
  }

  /**
   * To the `error` hook; without one, or from a failing `error` handler (`hook`), to the
   * reporter: errors never vanish.
   */
  #report(error: unknown, hook?: HookName): void {
    const err = error instanceof Error ? error : new Error(String(error))
    if (hook !== 'error' && this.hooks.has('error')) void this.hooks.emit('error', { error: err })
    else this.#fallbackReport(err)
  }

  #fallbackReport(error: Error): void {
    try {
      this.#reportError(error)
    } catch (thrown) {
      // The app's reporter failed: both go to stderr rather than crash the process.
      reportToStderr(error)
      reportToStderr(thrown instanceof Error ? thrown : new Error(String(thrown)))
    }
  }
}

/** Creates a connection; `connection.plugins` is typed from the plugins passed. */
export function createConnection<const T extends readonly AnyPlugin[] = []>(
  options: ConnectionOptions<T>,
): Connection<ApisOf<T>> {
  return new Connection<ApisOf<T>>(options)
}

function needsAnswer(ctx: InboundContext): boolean {
  return ctx.name === 'iq' && (ctx.type === 'get' || ctx.type === 'set')
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

function safeInvalid(read: () => unknown): boolean {
  try {
    read()
    return false
  } catch {
    return true
  }
}

/** RFC 6120 §4.9.3.19: the peer asks us to connect elsewhere. */
function isRedirect(error: unknown): error is StreamError {
  return error instanceof StreamError && error.remote && error.condition === 'see-other-host'
}

/** Why a stream ended, from its error, when the cause did not say so itself. */
function reasonOf(error: XMPPError | undefined): DisconnectReason {
  if (error === undefined) return 'stopped'
  if (error instanceof StreamError) return 'stream-error'
  if (error instanceof TimeoutError) return 'timeout'
  if (error instanceof ConnectionError && error.code === 'stopped') return 'stopped'
  return 'dropped'
}

function leftToConnectCaller(): void {}

/** What a negotiation context of an ended attempt answers (see #negotiationContext). */
function abandoned(attempt: Cancellation): Promise<never> {
  return Promise.reject(attempt.reason)
}

function closedError(): ConnectionError {
  return new ConnectionError('disconnected', 'the connection closed')
}

function toXMPPError(error: unknown): XMPPError {
  if (error instanceof XMPPError) return error
  return new ConnectionError('transport', describe(error), error)
}

export type { HookMap }
