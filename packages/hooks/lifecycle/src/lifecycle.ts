import {
  type Connection,
  definePlugin,
  type DisconnectReason,
  type HookMap,
  type PluginContext,
} from '@core/connection'
import { ConnectionError, StanzaError, TimeoutError, XMPPError } from '@core/errors'
import { xml } from '@core/xml'
import { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF } from './backoff.js'
import { LifecycleError } from './errors.js'
import { isPermanentError } from './permanent.js'
import type { LifecycleState } from './states.js'

export interface LifecycleOptions {
  /** Reconnect after an unexpected disconnection. Default true. */
  reconnect: boolean
  /** Delays between attempts (see BackoffOptions); the first retry after a drop is prompt. */
  backoff: Partial<BackoffOptions>
  /** Attempts in a row before giving up (`permanent-error`, `retries-exhausted`). Default: no limit. */
  maxAttempts: number
  /** Whether a failure would only repeat on a new attempt. Default: {@link isPermanentError}. */
  isPermanent: (error: XMPPError) => boolean
  /** Aborting it stops the connection and cancels any pending retry, like stop(). */
  signal?: AbortSignal | undefined
  /**
   * Inbound silence (ms) after which the connection is checked with the probe; 0 turns
   * dead-connection detection off. Default 30 000.
   */
  idleTimeout: number
  /** How long the probe may take (ms) before the connection counts as dead. Default 10 000. */
  probeTimeout: number
  /**
   * Checks that the peer still answers; rejects (or outlives `probeTimeout`) when it does
   * not. Default: stream management's ack request when `@xep/0198-sm` is registered and
   * enabled on the stream, else an XEP-0199 ping to the server through the `iq` plugin when
   * registered, else a whitespace keepalive (which detects nothing by itself, but keeps NATs
   * open and lets TCP notice a dead peer).
   */
  probe?: ((signal: AbortSignal) => Promise<void>) | undefined
  /**
   * A post-connect or post-resume handler that fails: `'report'` (default) sends its error to
   * the `error` hook and the connection stays up; `'fatal'` closes the connection and reports
   * a `permanent-error` (`LifecycleError` `hook-failed`, the handler's error as `cause`).
   */
  hookErrors: 'report' | 'fatal'
  /** The jitter's source of randomness, [0, 1). Default Math.random. */
  random: () => number
}

const DEFAULTS: LifecycleOptions = {
  reconnect: true,
  backoff: DEFAULT_BACKOFF,
  maxAttempts: Number.POSITIVE_INFINITY,
  isPermanent: isPermanentError,
  idleTimeout: 30_000,
  probeTimeout: 10_000,
  hookErrors: 'report',
  random: Math.random,
}

/** The API at `conn.plugins.lifecycle`. */
export interface LifecycleApi {
  /** The current state (the last one the `lifecycle` hook saw); `stopped` before any start. */
  readonly state: LifecycleState
  /**
   * Connects, and keeps trying through transient failures (backoff) from the first attempt
   * on. Resolves once online; rejects with the typed error on a permanent error, when the
   * attempts run out or when stopped first. A plain `conn.connect()` works too: then the
   * first attempt's failure is the caller's, and reconnection covers every drop after
   * the session was online.
   */
  start(): Promise<void>
  /**
   * Cancels any pending retry and probe, closes the connection cleanly and reports
   * `stopped`. A session kept resumable is ended. Nothing reconnects until start() or
   * connect() is called again.
   */
  stop(): Promise<void>
}

/**
 * `@hooks/lifecycle`: typed states on one hook, post-connect and post-resume hooks,
 * reconnection with backoff, and dead-connection detection. Register it after stream
 * management (its `online` handler then runs first).
 */
export const lifecycle = definePlugin({
  name: 'lifecycle',
  options: DEFAULTS,
  setup(ctx, options): LifecycleApi {
    return new Lifecycle(ctx, options)
  },
})

interface IqRequester {
  request(
    iq: ReturnType<typeof xml>,
    options: { timeout: number; signal: AbortSignal },
  ): Promise<unknown>
}

/** What the probe needs of `@xep/0198-sm`'s API (no dependency on that package). */
interface AckProber {
  readonly enabled: boolean
  probe(signal: AbortSignal): Promise<void>
}

class Lifecycle implements LifecycleApi {
  readonly #ctx: PluginContext
  readonly #conn: Connection
  readonly #options: LifecycleOptions
  readonly #backoff: BackoffOptions
  #current: LifecycleState = STOPPED
  /** Retry after failures: set by start() and by reaching online; cleared by a stop or a give-up. */
  #active = false
  /** Attempts since the last time online, and how many of them waited (the backoff's step). */
  #attempt = 0
  #delayed = 0
  #retryTimer: ReturnType<typeof setTimeout> | undefined
  /** Counts the core's `disconnected` hooks: tells whether an attempt's failure was reported. */
  #disconnects = 0
  #everOnline = false
  #droppedAt: number | undefined
  #lastCause: XMPPError | undefined
  /** A fatal hook failure: the disconnection that follows reports it. */
  #fatal: XMPPError | undefined
  #waiters: { resolve: () => void; reject: (error: Error) => void }[] = []
  // Dead-connection detection.
  #lastInbound = 0
  #idleTimer: ReturnType<typeof setTimeout> | undefined
  #probing: { controller: AbortController; timer: ReturnType<typeof setTimeout> } | undefined

  constructor(ctx: PluginContext, options: LifecycleOptions) {
    this.#ctx = ctx
    this.#conn = ctx.connection
    this.#options = options
    this.#backoff = { ...DEFAULT_BACKOFF, ...options.backoff }
    ctx.hooks.on('state', ({ state, previous }) => {
      if (state !== 'connecting' || previous !== 'disconnected') return
      // An attempt started (ours, or the app's own connect()): no retry is pending any more.
      this.#clearRetry()
      return this.#set(this.#conn.resumable ? RESUMING : CONNECTING)
    })
    ctx.hooks.on('online', ({ resumed }) => this.#onOnline(resumed))
    ctx.hooks.on('disconnected', (payload) => this.#onDisconnected(payload))
    // The app's own disconnect() means stop, also between a drop and the next attempt
    // (there is no stream to close then, and no `disconnected` hook follows).
    ctx.hooks.on('stop', () => {
      this.#active = false
      this.#clearRetry()
      if (this.#conn.state === 'disconnected') this.#enterStopped()
    })
    // Any inbound data proves the peer is there; chunks, not elements (whitespace counts).
    if (options.idleTimeout > 0) {
      ctx.onRaw((direction) => {
        if (direction === 'in') this.#lastInbound = Date.now()
      })
    }
    const signal = options.signal
    if (signal) {
      const onAbort = () => {
        void this.stop()
      }
      signal.addEventListener('abort', onAbort, { once: true })
      ctx.onDispose(() => signal.removeEventListener('abort', onAbort))
    }
    // Browsers: retry at once when the network is back; check the link when it changes.
    const target = globalThis as Partial<
      Pick<EventTarget, 'addEventListener' | 'removeEventListener'>
    >
    if (
      typeof target.addEventListener === 'function' &&
      typeof target.removeEventListener === 'function'
    ) {
      const onOnline = () => this.#networkBack()
      const onOffline = () => this.#runProbe()
      target.addEventListener('online', onOnline)
      target.addEventListener('offline', onOffline)
      ctx.onDispose(() => {
        target.removeEventListener?.('online', onOnline)
        target.removeEventListener?.('offline', onOffline)
      })
    }
    ctx.onDispose(() => {
      this.#active = false
      this.#clearRetry()
      this.#stopWatching()
      this.#failWaiters(new ConnectionError('disposed', 'the connection was disposed'))
    })
  }

  get state(): LifecycleState {
    return this.#current
  }

  start(): Promise<void> {
    if (this.#options.signal?.aborted) {
      return Promise.reject(new ConnectionError('stopped', 'the lifecycle signal was aborted'))
    }
    this.#active = true
    if (this.#conn.state === 'online') return Promise.resolve()
    const started = new Promise<void>((resolve, reject) => {
      this.#waiters.push({ resolve, reject })
    })
    if (this.#conn.state === 'disconnected' && this.#retryTimer === undefined) this.#attemptNow()
    return started
  }

  async stop(): Promise<void> {
    this.#active = false
    this.#clearRetry()
    this.#stopWatching()
    if (this.#conn.state !== 'disconnected') await this.#conn.disconnect()
    // Already disconnected (a retry was pending), or the close raced a drop: say so here.
    this.#enterStopped()
  }

  #set(state: LifecycleState): Promise<void> | undefined {
    this.#current = state
    return this.#ctx.hooks.emit('lifecycle', state)
  }

  async #onOnline(resumed: boolean): Promise<void> {
    this.#active = true
    this.#attempt = 0
    this.#delayed = 0
    this.#lastCause = undefined
    const downtime = this.#droppedAt === undefined ? 0 : Date.now() - this.#droppedAt
    this.#droppedAt = undefined
    const reconnected = this.#everOnline
    this.#everOnline = true
    this.#lastInbound = Date.now()
    this.#armIdle(this.#options.idleTimeout)
    await this.#set(resumed ? ONLINE_RESUMED : ONLINE_FRESH)
    if (this.#options.signal?.aborted) {
      void this.stop()
      return
    }
    // Exactly one of the two per (re)connection, chosen by what negotiation said.
    const failures: unknown[] = []
    const onError =
      this.#options.hookErrors === 'fatal' ? (error: unknown) => failures.push(error) : undefined
    const hook = resumed ? 'post-resume' : 'post-connect'
    if (resumed) await this.#ctx.hooks.emit('post-resume', { downtime }, onError)
    else await this.#ctx.hooks.emit('post-connect', { reconnected }, onError)
    if (failures.length === 0) {
      // start() resolves once the session is set up, as connect() does.
      const waiters = this.#waiters
      this.#waiters = []
      for (const waiter of waiters) waiter.resolve()
      return
    }
    const first = failures[0]
    this.#fatal = new LifecycleError(
      'hook-failed',
      `a ${hook} handler failed: ${first instanceof Error ? first.message : String(first)}`,
      first,
    )
    // disconnect() does not reject; its `disconnected` hook reports #fatal.
    if (this.#conn.state !== 'disconnected') void this.#conn.disconnect()
    else this.#giveUp(this.#takeFatal() as XMPPError, false)
  }

  #onDisconnected(payload: HookMap['disconnected']): void {
    this.#disconnects++
    this.#stopWatching()
    this.#droppedAt ??= Date.now()
    const fatal = this.#takeFatal()
    if (fatal) {
      this.#giveUp(fatal, payload.resumable)
      return
    }
    if (payload.reason === 'stopped' || payload.reason === 'close-timeout') {
      this.#enterStopped()
      return
    }
    const cause = payload.error ?? new ConnectionError('disconnected', 'the stream ended')
    if (this.#options.isPermanent(cause)) {
      this.#giveUp(cause, payload.resumable)
      return
    }
    this.#lastCause = cause
    void this.#set({
      state: 'disconnected',
      resumable: payload.resumable,
      cause,
      reason: payload.reason,
    })
    // A `disconnected` handler may have stopped us.
    if (this.#active && this.#options.reconnect) this.#schedule(payload.reason, payload.resumable)
  }

  #takeFatal(): XMPPError | undefined {
    const fatal = this.#fatal
    this.#fatal = undefined
    return fatal
  }

  #schedule(reason: DisconnectReason, resumable: boolean): void {
    this.#attempt++
    const max = this.#options.maxAttempts
    if (this.#attempt > max) {
      const last = this.#lastCause
      this.#giveUp(
        new LifecycleError(
          'retries-exhausted',
          `gave up after ${max} reconnection attempt${max === 1 ? '' : 's'}${last ? `: ${last.message}` : ''}`,
          last,
        ),
        resumable,
      )
      return
    }
    // The first retry after a network failure is prompt: most drops are a moment's loss.
    const prompt = this.#attempt === 1 && (reason === 'dropped' || reason === 'timeout')
    const delay = prompt ? 0 : backoffDelay(this.#delayed++, this.#backoff, this.#options.random)
    // The timer first: a `reconnecting` handler that calls stop() clears it.
    this.#retryTimer = this.#ctx.setTimeout(() => {
      this.#retryTimer = undefined
      this.#attemptNow()
    }, delay)
    void this.#set({ state: 'reconnecting', attempt: this.#attempt, delay })
  }

  #attemptNow(): void {
    if (!this.#active || this.#conn.state !== 'disconnected') return
    const seen = this.#disconnects
    this.#conn.connect().then(
      // Online: the core's `online` hook has told the rest.
      () => undefined,
      (error: unknown) => {
        // The `disconnected` hook reported this failure already.
        if (seen !== this.#disconnects || !this.#active) return
        if ((error as { code?: unknown }).code === 'disposed') return
        // It failed before there was a transport (its factory threw): handled as a drop.
        this.#onDisconnected({
          error:
            error instanceof XMPPError
              ? error
              : new ConnectionError('transport', describe(error), error),
          clean: false,
          reason: 'dropped',
          resumable: this.#conn.resumable,
        })
      },
    )
  }

  /** The network is back: retry now rather than at the end of a backoff delay. */
  #networkBack(): void {
    // Online already: the network may have changed under the connection; check it.
    if (this.#conn.state === 'online') {
      this.#runProbe()
      return
    }
    if (!this.#active || this.#retryTimer === undefined) return
    this.#clearRetry()
    this.#attemptNow()
  }

  #giveUp(error: XMPPError, resumable: boolean): void {
    this.#active = false
    this.#clearRetry()
    this.#stopWatching()
    // Nobody will resume this session: what waits on it fails now.
    if (resumable || this.#conn.resumable) this.#conn.endSession(error)
    this.#failWaiters(error)
    void this.#set({ state: 'permanent-error', error })
  }

  #enterStopped(): void {
    this.#active = false
    this.#clearRetry()
    this.#stopWatching()
    const stopped = new ConnectionError('stopped', 'stopped by the app')
    if (this.#conn.state === 'disconnected' && this.#conn.resumable) this.#conn.endSession(stopped)
    this.#failWaiters(stopped)
    if (this.#current.state !== 'stopped' && this.#current.state !== 'permanent-error') {
      void this.#set(STOPPED)
    }
  }

  #failWaiters(error: Error): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const waiter of waiters) waiter.reject(error)
  }

  #clearRetry(): void {
    if (this.#retryTimer === undefined) return
    this.#ctx.clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
  }

  // Dead-connection detection: after `idleTimeout` ms without inbound data, probe; no answer
  // within `probeTimeout` ms and the transport is destroyed, which the core reports as a drop.

  #armIdle(ms: number): void {
    if (this.#options.idleTimeout <= 0) return
    if (this.#idleTimer !== undefined) this.#ctx.clearTimeout(this.#idleTimer)
    this.#idleTimer = this.#ctx.setTimeout(() => this.#onIdle(), ms)
  }

  #onIdle(): void {
    this.#idleTimer = undefined
    if (this.#conn.state !== 'online') return
    const quiet = Date.now() - this.#lastInbound
    const idle = this.#options.idleTimeout
    if (quiet < idle) {
      this.#armIdle(idle - quiet)
      return
    }
    this.#runProbe()
  }

  #runProbe(): void {
    const transport = this.#conn.transport
    if (this.#probing || this.#conn.state !== 'online' || !transport) return
    const probe = this.#options.probe ?? this.#smProbe() ?? this.#pingProbe()
    if (!probe) {
      // RFC 6120 §4.6.1: whitespace between elements keeps the link in use. Only on an XML
      // stream: a message framing (RFC 7395) allows no bytes outside elements.
      if (transport.framing.batch) transport.write(' ')
      this.#armIdle(this.#options.idleTimeout)
      return
    }
    const controller = new AbortController()
    const timeout = this.#options.probeTimeout
    const fail = (error: unknown) => {
      if (this.#probing?.controller !== controller) return
      this.#ctx.clearTimeout(this.#probing.timer)
      this.#probing = undefined
      controller.abort(error)
      if (this.#conn.transport !== transport) return
      transport.destroy(
        new ConnectionError(
          'disconnected',
          `the peer did not answer the liveness probe: ${describe(error)}`,
          error,
        ),
      )
    }
    this.#probing = {
      controller,
      timer: this.#ctx.setTimeout(
        () => fail(new TimeoutError(`no answer within ${timeout} ms`, 'probe')),
        timeout,
      ),
    }
    let pending: Promise<void>
    try {
      pending = probe(controller.signal)
    } catch (error) {
      pending = Promise.reject(error)
    }
    pending.then(() => {
      if (this.#probing?.controller !== controller) return
      this.#ctx.clearTimeout(this.#probing.timer)
      this.#probing = undefined
      this.#armIdle(this.#options.idleTimeout)
    }, fail)
  }

  /**
   * XEP-0198 §4: with stream management enabled on this stream (a plugin registered as `sm`
   * whose API says `enabled`), an ack request: the cheapest question the server must answer.
   */
  #smProbe(): ((signal: AbortSignal) => Promise<void>) | undefined {
    const sm = (this.#conn.plugins as Record<string, unknown>).sm as AckProber | undefined
    if (sm?.enabled !== true || typeof sm.probe !== 'function') return undefined
    return (signal) => sm.probe(signal)
  }

  /** XEP-0199 §4.2: a ping to the server; any answer, an error included, proves it is there. */
  #pingProbe(): ((signal: AbortSignal) => Promise<void>) | undefined {
    const iq = (this.#conn.plugins as Record<string, unknown>).iq as IqRequester | undefined
    if (typeof iq?.request !== 'function') return undefined
    const timeout = this.#options.probeTimeout
    const domain = this.#conn.domain
    return (signal) =>
      iq
        .request(xml('iq', { type: 'get', to: domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })), {
          // The probe's own deadline decides; this one only bounds the request's life.
          timeout: timeout * 2,
          signal,
        })
        .then(
          () => undefined,
          (error: unknown) => {
            if (error instanceof StanzaError) return
            throw error
          },
        )
  }

  #stopWatching(): void {
    if (this.#idleTimer !== undefined) this.#ctx.clearTimeout(this.#idleTimer)
    this.#idleTimer = undefined
    const probing = this.#probing
    this.#probing = undefined
    if (probing) {
      this.#ctx.clearTimeout(probing.timer)
      probing.controller.abort(new ConnectionError('disconnected', 'the stream ended'))
    }
  }
}

const STOPPED: LifecycleState = Object.freeze({ state: 'stopped' })
const CONNECTING: LifecycleState = Object.freeze({ state: 'connecting' })
const RESUMING: LifecycleState = Object.freeze({ state: 'resuming' })
const ONLINE_FRESH: LifecycleState = Object.freeze({ state: 'online', resumed: false })
const ONLINE_RESUMED: LifecycleState = Object.freeze({ state: 'online', resumed: true })

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
