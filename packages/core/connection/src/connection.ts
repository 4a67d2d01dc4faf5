import { Element, NS_CLIENT, NS_STANZA_ERRORS, NS_STREAM_ERRORS } from '@core/xml'
import type { StreamParserOptions } from '@core/xml'
import { ConnectionError, JIDError, StreamError, type XMPPError } from '@core/errors'
import { JID } from '@core/jid'
import { Attempt, type AttemptHost, isRedirect, toXMPPError } from './attempt.js'
import { featureNegotiator } from './feature-negotiator.js'
import { Cancellation } from './cancellation.js'
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

let newInternals: (
  connection: Connection,
  options: ConnectionOptions,
) => InboundSteps & RegistryHost & AttemptHost
let newHooks: (connection: Connection) => Hooks

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
  readonly #registry: PluginRegistry
  readonly #internals: InboundSteps & RegistryHost & AttemptHost
  /** The registry's taps, read per element once composed. */
  #handled: ((ctx: InboundContext) => void)[] = []
  /** The connect() call in flight. */
  #connecting: Promise<void> | undefined
  /** The current (or last) attempt: its transport, stream and negotiation. */
  #attempt: Attempt | undefined
  /** Increments per attempt: completions of an older stream's elements are ignored. */
  #generation = 0
  #disposing: Promise<void> | undefined
  /** The composed middleware; undefined when no plugin added any. */
  #inbound: Pipeline<InboundContext, Connection<A>> | undefined
  #outbound: Pipeline<OutboundContext, Connection<A>> | undefined
  /** Inbound elements, handled one at a time (they may outlive their stream). */
  readonly #inQueue: InboundQueue
  /** The last valid `from` seen, and its JID (see #checkFrom). */
  #lastFrom: string | undefined
  #lastFromJid: JID | undefined
  /** The current session's end (connection.signal); created on first use. */
  #session: Cancellation | undefined
  readonly #reportError: (error: Error) => void

  constructor(options: ConnectionOptions) {
    this.#newTransport = options.transport
    this.#maxRedirects = options.maxRedirects ?? 3
    this.domain = options.domain
    this.service = options.service
    this.lang = options.lang
    this.#reportError = options.reportError ?? reportToStderr
    // One object with methods serves the inbound queue, the attempts and the registry
    // (closures per connection add up over many idle connections).
    this.#internals = newInternals(this as unknown as Connection, options)
    this.#inQueue = new InboundQueue(this.#internals)
    this.hooks = newHooks(this as unknown as Connection)
    this.plugins = {} as A
    this.#registry = new PluginRegistry(this as unknown as Connection, this.#internals)
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
    const attempt = this.#attempt
    return attempt && !attempt.finished ? attempt.transport : undefined
  }

  /** The peer's stream header on the current stream. */
  get header(): Readonly<Record<string, string>> {
    return this.#attempt?.header ?? {}
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
    // What the inbound queue, the attempts and the registry call back into.
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

    // The connection's settings and internals, for the inbound queue, the attempts and the
    // registry: one object with methods (closures per connection add up when idle).
    class Internals implements InboundSteps, RegistryHost, AttemptHost {
      readonly connection: Connection
      readonly timeouts: Required<ConnectionTimeouts>
      readonly limits: StreamParserOptions | undefined
      readonly highWaterBytes: number
      // Set when the registry is composed.
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
      get setupTimeout(): number {
        return this.timeouts.pluginSetup
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
        // A plugin ended the previous session during this negotiation (stream management
        // whose resumption failed): the session now online is a new one, with a new signal.
        if (!resumed && c.#session?.aborted) c.#session = undefined
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
    // The pipelines keep their own copies; the registration lists are not read again.
    registry.inboundLayers = registry.outboundLayers = []
    this.#handled = registry.handled
    const internals = this.#internals
    internals.features = registry.features = registry.features.slice()
    internals.negotiator = registry.negotiator
    internals.rawTaps = registry.rawTaps
  }

  /**
   * Opens the transport and negotiates the stream. Resolves when online; rejects with a
   * typed error (and the connection is disconnected) otherwise.
   */
  connect(): Promise<void> {
    if (this.#registry.disposed || this.#disposing) {
      return Promise.reject(new ConnectionError('disposed', 'the connection was disposed'))
    }
    // A second call while connecting joins the call in flight, unless that call already
    // failed (a 'disconnected' hook reconnecting): then a new one starts.
    if (this.#connecting && !this.#attempt?.failed) return this.#connecting
    if (this.#state !== 'disconnected') {
      return Promise.reject(
        new ConnectionError('not-connected', `connect() called while ${this.#state}`),
      )
    }
    this.#registry.freeze()
    // The previous session ended: this connection starts a new one (and a new signal).
    if (this.#session?.aborted) this.#session = undefined
    // The attempt exists at once (disconnect() may stop it), but starts one turn later:
    // connect() returns before any state change, and the call is registered before hooks
    // run (a 'state' hook may call disconnect(); a 'disconnected' hook that reconnects lets
    // the old session end first).
    const attempt = new Attempt(this.#internals)
    this.#attempt = attempt
    const connecting = RESOLVED.then(() => this.#connectWithRedirects(attempt)).finally(() => {
      if (this.#connecting === connecting) this.#connecting = undefined
    })
    this.#connecting = connecting
    return connecting
  }

  async #connectWithRedirects(first: Attempt): Promise<void> {
    // Without async setups there is nothing to wait for (and no reason to yield).
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

  /**
   * Closes the stream cleanly: our `</stream:stream>`, then waits (bounded) for the peer's
   * before closing the transport. Reported with reason `stopped` (`close-timeout` when the
   * peer did not close in time).
   */
  async disconnect(): Promise<void> {
    // Also when there is no stream to close: a pending reconnection must not start one.
    void this.hooks.emit('stop', {})
    const connecting = this.#connecting
    const attempt = this.#attempt
    if (connecting && this.#state !== 'online') {
      // Stop the attempt in flight; connect() rejects with this error.
      attempt?.cancel(new ConnectionError('stopped', 'disconnect() was called while connecting'))
      // connect()'s caller gets the call's outcome; disconnect() only waits for its end.
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
    const attempt = this.#attempt
    const online = this.#state === 'online'
    // Before online, only negotiation may write: a stanza there is a protocol error.
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
      // An iq request needs an answer addressed from its `to`: check it now (`from` was
      // checked above for every stanza).
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

function leftToConnectCaller(): void {}

const RESOLVED: Promise<void> = Promise.resolve()

export type { HookMap }
