import { Element, NS_CLIENT, NS_STANZA_ERRORS, NS_STREAM_ERRORS } from '@core/xml'
import type { StreamParserOptions } from '@core/xml'
import { ConnectionError, JIDError, StreamError, type XMPPError } from '@core/errors'
import { JID } from '@core/jid'
import { Attempt, type AttemptHost, isRedirect, toXMPPError } from './attempt.js'
import { featureNegotiator } from './feature-negotiator.js'
import { type HookMap, type HookName, Hooks } from './hooks.js'
import type { Negotiator, StreamFeature } from './features.js'
import { InboundContext, OutboundContext, Pipeline } from './middleware.js'
import type { AnyPlugin, ApiOf, ApisOf } from './plugin.js'
import type { ConnectionState } from './state.js'
import type { Transport, TransportFactory } from './transport.js'
import { PluginRegistry, type RegistryHost } from './plugin-registry.js'
import { type RawTap, settledOf } from './outbound-writer.js'
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
  /** Input bytes buffered while handlers are busy before the transport pauses. Default 1 MiB. */
  inboundHighWaterBytes?: number
  /** Errors no `error` hook took. Default: one line on stderr, never element content. */
  reportError?: (error: Error) => void
}

let newInternals: (
  connection: Connection,
  options: ConnectionOptions,
) => InboundSteps & RegistryHost & AttemptHost
let newHooks: (connection: Connection) => Hooks

/** One XMPP stream at a time, with its plugins; connect() again after a drop keeps them. */
export class Connection<A extends object = Record<string, unknown>> {
  readonly domain: string
  readonly service: string | undefined
  readonly lang: string | undefined
  readonly hooks: Hooks
  /** The APIs of the registered plugins, keyed by plugin name. */
  readonly plugins: A
  /** Our address once bound. */
  jid: JID | undefined = undefined
  /** Set by a plugin that can resume (stream management): it then emits `session-end`. */
  resumable = false

  #state: ConnectionState = 'disconnected'
  readonly #newTransport: TransportFactory
  readonly #maxRedirects: number
  readonly #registry: PluginRegistry
  readonly #internals: InboundSteps & RegistryHost & AttemptHost
  #handled: ((ctx: InboundContext) => void)[] = []
  #connecting: Promise<void> | undefined
  #attempt: Attempt | undefined
  /** Increments per attempt: completions of an older stream's elements are ignored. */
  #generation = 0
  #disposing: Promise<void> | undefined
  #inbound: Pipeline<InboundContext, Connection<A>> | undefined
  #outbound: Pipeline<OutboundContext, Connection<A>> | undefined
  readonly #inQueue: InboundQueue
  #lastFrom: string | undefined
  #lastFromJid: JID | undefined
  /** `signal`'s controller, made when first read; `#ended` once the session ended. */
  #session: AbortController | undefined
  #ended: XMPPError | undefined
  readonly #reportError: (error: Error) => void

  constructor(options: ConnectionOptions) {
    this.#newTransport = options.transport
    this.#maxRedirects = options.maxRedirects ?? 3
    this.domain = options.domain
    this.service = options.service
    this.lang = options.lang
    this.#reportError = options.reportError ?? reportToStderr
    this.#internals = newInternals(this as unknown as Connection, options)
    this.#inQueue = new InboundQueue(this.#internals)
    this.hooks = newHooks(this as unknown as Connection)
    this.plugins = {} as A
    this.#registry = new PluginRegistry(this as unknown as Connection, this.#internals)
    try {
      for (const plugin of options.plugins ?? []) this.#registry.use(plugin)
    } catch (error) {
      // The caller gets no connection: tear down what was set up.
      this.#disposing = this.#registry.teardown()
      throw error
    }
  }

  /** The stream's content namespace: `jabber:client` unless a negotiator says otherwise. */
  get xmlns(): string {
    return this.#registry.negotiator.xmlns ?? NS_CLIENT
  }

  get state(): ConnectionState {
    return this.#state
  }

  /** The current stream's number (as `InboundContext.stream`), incremented per attempt. */
  get stream(): number {
    return this.#generation
  }

  /** One-shot target for the next connect() instead of `service` (XEP-0198 §5 `location`). */
  nextTarget: { host: string; port?: number | undefined } | undefined = undefined

  /** The transport of the current stream, if any. */
  get transport(): Transport | undefined {
    const attempt = this.#attempt
    return attempt && !attempt.finished ? attempt.transport : undefined
  }

  /** The peer's stream header on the current stream. */
  get header(): Readonly<Record<string, string>> {
    return this.#attempt?.header ?? {}
  }

  /**
   * Aborted when the session ends, with the cause as `reason` (StreamError, ConnectionError
   * `disconnected`/`stopped`, TimeoutError). A resumable session outlives its stream; the
   * next connect() after the end brings a new signal.
   */
  get signal(): AbortSignal {
    if (!this.#session) {
      this.#session = new AbortController()
      if (this.#ended) this.#session.abort(this.#ended)
    }
    return this.#session.signal
  }

  /** Ends the session: `signal` aborts with `cause`, `session-end` is emitted. */
  endSession(cause?: XMPPError): void {
    if (this.#ended) return
    this.#ended = cause ?? new ConnectionError('stopped', 'the connection was closed by the app')
    this.#session?.abort(this.#ended)
    void this.hooks.emit('session-end', { error: cause })
  }

  /** A new session: a new `signal`. */
  #newSession(): void {
    if (this.#ended) this.#session = this.#ended = undefined
  }

  /**
   * Registers a plugin after its dependencies; fails after the first connect(). A setup that
   * throws leaves nothing behind.
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

    // What the inbound queue, the attempts and the registry call back into: one object with
    // methods, not closures (they add up over many idle connections).
    class Internals implements InboundSteps, RegistryHost, AttemptHost {
      readonly connection: Connection
      readonly timeouts: Required<ConnectionTimeouts>
      readonly limits: StreamParserOptions | undefined
      readonly highWaterBytes: number
      features: readonly StreamFeature[] = []
      negotiator: Negotiator = featureNegotiator
      rawTaps: readonly RawTap[] = []
      constructor(connection: Connection, options: ConnectionOptions) {
        this.connection = connection
        const timeouts = options.timeouts
        this.timeouts = {
          connect: timeouts?.connect ?? 10_000,
          negotiation: timeouts?.negotiation ?? 10_000,
          close: timeouts?.close ?? 2_000,
          pluginSetup: timeouts?.pluginSetup ?? 5_000,
        }
        this.limits = options.limits
        this.highWaterBytes = options.inboundHighWaterBytes ?? 1_048_576
      }
      get inboundIdle(): boolean {
        return this.connection.#inQueue.idle
      }
      process(ctx: InboundContext): void | Promise<void> {
        return this.connection.#process(ctx)
      }
      drained(): void {
        this.connection.#attempt?.backlogChanged()
      }
      report(error: unknown): void {
        this.connection.#report(error)
      }
      inboundSettled(timeout: number): Promise<boolean> {
        return this.connection.#inQueue.settled(timeout)
      }
      fail(error: XMPPError, appCondition?: Element): void {
        this.connection.#attempt?.fail(error, appCondition)
      }
      setState(state: ConnectionState, cause?: Error): void {
        this.connection.#setState(state, cause)
      }
      enqueue(element: Element): void {
        const c = this.connection
        c.#inQueue.push(new InboundContext(element, element.getName(), c.#generation))
      }
      send(element: Element): Promise<void> {
        return this.connection.#send(element, true)
      }
      online(resumed: boolean): void {
        const c = this.connection
        // A plugin ended the previous session during this negotiation: a new one, new signal.
        if (!resumed) c.#newSession()
        c.#setState('online')
      }
    }
    newInternals = (connection, options) => new Internals(connection, options)
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
    registry.inboundLayers = registry.outboundLayers = []
    this.#handled = registry.handled
    const internals = this.#internals
    internals.features = registry.features = registry.features.slice()
    internals.negotiator = registry.negotiator
    internals.rawTaps = registry.rawTaps
  }

  /** Opens the transport and negotiates. Resolves when online; rejects with a typed error. */
  connect(): Promise<void> {
    if (this.#registry.disposed || this.#disposing) {
      return Promise.reject(new ConnectionError('disposed', 'the connection was disposed'))
    }
    // Join the call in flight, unless it failed (a 'disconnected' hook reconnecting).
    if (this.#connecting && !this.#attempt?.failed) return this.#connecting
    if (this.#state !== 'disconnected') {
      return Promise.reject(
        new ConnectionError('not-connected', `connect() called while ${this.#state}`),
      )
    }
    this.#registry.freeze()
    this.#newSession()
    // The attempt exists now (disconnect() may stop it) but starts a turn later: the call is
    // registered before any hook runs, and a reconnecting 'disconnected' hook lets the old
    // session end first.
    const attempt = new Attempt(this.#internals)
    this.#attempt = attempt
    const connecting = RESOLVED.then(() => this.#connectWithRedirects(attempt)).finally(() => {
      if (this.#connecting === connecting) this.#connecting = undefined
    })
    this.#connecting = connecting
    return connecting
  }

  async #connectWithRedirects(first: Attempt): Promise<void> {
    if (this.#registry.hasAsyncSetups) await this.#registry.settled()
    this.#compose()
    const max = this.#maxRedirects
    const preferred = this.nextTarget
    this.nextTarget = undefined
    let host: string | undefined = preferred?.host
    let port: number | undefined = preferred?.port
    let attempt = first
    for (let count = 0; ; count++) {
      try {
        await this.#connectOnce(attempt, host, port, count < max)
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
        attempt = this.#attempt = new Attempt(this.#internals)
        await this.hooks.emit('redirect', { host, port, count: count + 1 })
      }
    }
  }

  #connectOnce(
    attempt: Attempt,
    host: string | undefined,
    port: number | undefined,
    mayRedirect: boolean,
  ): Promise<void> {
    if (attempt.cancelled) return Promise.reject(attempt.cancelled)
    this.#generation++
    this.#setState('connecting')
    let transport: Transport
    try {
      transport = this.#newTransport()
    } catch (error) {
      attempt.failed = true
      this.#setState('disconnected', toXMPPError(error))
      return Promise.reject(toXMPPError(error))
    }
    return attempt.run(transport, host, port, mayRedirect)
  }

  /** Closes the stream, waiting (bounded) for the peer's; reason `stopped` or `close-timeout`. */
  async disconnect(): Promise<void> {
    // Even without a stream: a pending reconnection must not start one.
    void this.hooks.emit('stop', {})
    const connecting = this.#connecting
    const attempt = this.#attempt
    if (connecting && this.#state !== 'online') {
      attempt?.cancel(new ConnectionError('stopped', 'disconnect() was called while connecting'))
      await connecting.then(undefined, leftToConnectCaller)
      return
    }
    if (!attempt || !this.transport) {
      // Between a drop and a resumption: the app's stop ends the kept session for good.
      if (this.resumable) {
        this.resumable = false
        this.endSession(new ConnectionError('stopped', 'the connection was closed by the app'))
      }
      return
    }
    if (!attempt.closing && this.#state === 'online' && this.hooks.has('closing')) {
      // Last words on the stream, while it is still online (XEP-0198 §4: a final ack).
      const closing = this.hooks.emit('closing', {})
      if (closing) await closing
    }
    return attempt.shutdown()
  }

  /** Disconnects, then tears plugins down in reverse order; concurrent calls share it. */
  dispose(): Promise<void> {
    this.#disposing ??= this.disconnect().then(() => this.#registry.teardown())
    return this.#disposing
  }

  /**
   * Sends through the outbound pipeline, in any state (a plugin may hold it). Resolves once
   * handed to the transport, or once a delivery-tracking plugin confirms; a dropped element
   * resolves. Rejects with ConnectionError `not-connected` when offline and no plugin took
   * it, or with the cause when the stream ends before it was written.
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
    const attempt = this.#attempt
    const online = this.#state === 'online'
    if (!attempt?.writable || (!online && !ctx.negotiation)) {
      throw new ConnectionError(
        'not-connected',
        `cannot send <${ctx.element.name}/> while ${this.#state}${
          online ? ' (closing)' : ''
        }: wait for connect() to resolve (or the 'online' hook)`,
      )
    }
    // Before online, negotiation is one element per round trip: written at once.
    attempt.writer.queue(ctx, this.xmlns, !online)
  }

  /** Handles one inbound element and completes it (the inbound queue calls it). */
  #process(ctx: InboundContext): void | Promise<void> {
    try {
      const result = this.#handle(ctx)
      if (result !== undefined && isPromise(result)) {
        return result.then(
          () => this.#complete(ctx),
          (error: unknown) => {
            this.#inboundFailed(ctx, error)
            this.#complete(ctx)
          },
        )
      }
    } catch (error) {
      this.#inboundFailed(ctx, error)
    }
    this.#complete(ctx)
  }

  /** Checks an inbound element, then runs it through the pipeline. */
  #handle(ctx: InboundContext): void | Promise<void> {
    const current = ctx.stream === this.#generation
    if (current && ctx.kind === 'stanza' && !this.#checkFrom(ctx)) return
    if (current && needsAnswer(ctx)) {
      // The answer is addressed from the request's `to`: check it now.
      try {
        void ctx.to
      } catch (error) {
        this.#attempt?.fail(
          new StreamError('improper-addressing', `iq with an invalid 'to': ${describe(error)}`),
        )
        return
      }
    }
    return this.#inbound ? this.#inbound.run(ctx) : this.#deliver(ctx)
  }

  /**
   * RFC 6120 §8.1.2.1: every stanza's `from` must parse, whatever handlers exist, else
   * invalid-from. The last sender is cached (most traffic comes from few senders).
   */
  #checkFrom(ctx: InboundContext): boolean {
    const from = ctx.element.attrs.from
    if (typeof from !== 'string') return true
    if (from !== this.#lastFrom) {
      const jid = JID.tryParse(from)
      if (jid === undefined) {
        this.#attempt?.fail(
          new StreamError('invalid-from', "stanza with an invalid 'from' address"),
        )
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
      this.#attempt?.fail(
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
      this.#attempt?.writable
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
    if (ctx.stream !== this.#generation || !this.transport) return
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

  /** To the `error` hook; without one, or from a failing `error` handler, to the reporter. */
  #report(error: unknown, hook?: HookName): void {
    const err = error instanceof Error ? error : new Error(String(error))
    if (hook !== 'error' && this.hooks.has('error')) void this.hooks.emit('error', { error: err })
    else {
      try {
        this.#reportError(err)
      } catch (thrown) {
        // The app's reporter failed: both go to stderr rather than crash the process.
        reportToStderr(err)
        reportToStderr(thrown instanceof Error ? thrown : new Error(String(thrown)))
      }
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

function leftToConnectCaller(): void {}

const RESOLVED: Promise<void> = Promise.resolve()
