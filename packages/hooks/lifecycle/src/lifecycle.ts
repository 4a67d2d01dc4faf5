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
  setup: createLifecycle,
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

type Probe = (signal: AbortSignal) => Promise<void>

/** The plugin's state lives in this closure (its names minify; a class's fields would not). */
function createLifecycle(ctx: PluginContext, options: LifecycleOptions): LifecycleApi {
  const conn: Connection = ctx.connection
  const hooks = ctx.hooks
  const backoff: BackoffOptions = { ...DEFAULT_BACKOFF, ...options.backoff }
  const idleTimeout = options.idleTimeout
  let current: LifecycleState = STOPPED
  /** Retry after failures: set by start() and by reaching online; cleared by a stop or a give-up. */
  let active = false
  /** Attempts since the last time online, and how many of them waited (the backoff's step). */
  let attempt = 0
  let delayed = 0
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  /** Counts the core's `disconnected` hooks: tells whether an attempt's failure was reported. */
  let disconnects = 0
  let everOnline = false
  let droppedAt: number | undefined
  let lastCause: XMPPError | undefined
  /** A fatal hook failure: the disconnection that follows reports it. */
  let fatal: XMPPError | undefined
  let waiters: { resolve: () => void; reject: (error: Error) => void }[] = []
  // Dead-connection detection.
  let lastInbound = 0
  let idleTimer: ReturnType<typeof setTimeout> | undefined
  let probing: { controller: AbortController; timer: ReturnType<typeof setTimeout> } | undefined

  const set = (state: LifecycleState): Promise<void> | undefined => {
    current = state
    return hooks.emit('lifecycle', state)
  }

  const clearRetry = (): void => {
    if (retryTimer === undefined) return
    ctx.clearTimeout(retryTimer)
    retryTimer = undefined
  }

  const failWaiters = (error: Error): void => {
    const list = waiters
    waiters = []
    for (const waiter of list) waiter.reject(error)
  }

  /** Stops retrying and watching: a stop, a give-up, the end of the connection. */
  const halt = (): void => {
    active = false
    clearRetry()
    stopWatching()
  }

  const onOnline = async (resumed: boolean): Promise<void> => {
    active = true
    attempt = 0
    delayed = 0
    lastCause = undefined
    const downtime = droppedAt === undefined ? 0 : Date.now() - droppedAt
    droppedAt = undefined
    const reconnected = everOnline
    everOnline = true
    lastInbound = Date.now()
    armIdle(idleTimeout)
    await set(resumed ? ONLINE_RESUMED : ONLINE_FRESH)
    if (options.signal?.aborted) {
      void api.stop()
      return
    }
    // Exactly one of the two per (re)connection, chosen by what negotiation said.
    const failures: unknown[] = []
    const onError =
      options.hookErrors === 'fatal' ? (error: unknown) => failures.push(error) : undefined
    const hook = resumed ? 'post-resume' : 'post-connect'
    if (resumed) await hooks.emit('post-resume', { downtime }, onError)
    else await hooks.emit('post-connect', { reconnected }, onError)
    if (failures.length === 0) {
      // start() resolves once the session is set up, as connect() does.
      const list = waiters
      waiters = []
      for (const waiter of list) waiter.resolve()
      return
    }
    const first = failures[0]
    fatal = new LifecycleError('hook-failed', `${hook} handler failed: ${describe(first)}`, first)
    // disconnect() does not reject; its `disconnected` hook reports the fatal error.
    if (conn.state !== 'disconnected') void conn.disconnect()
    else giveUp(takeFatal() as XMPPError, false)
  }

  const onDisconnected = (payload: HookMap['disconnected']): void => {
    disconnects++
    stopWatching()
    droppedAt ??= Date.now()
    const failed = takeFatal()
    if (failed) {
      giveUp(failed, payload.resumable)
      return
    }
    if (payload.reason === 'stopped' || payload.reason === 'close-timeout') {
      enterStopped()
      return
    }
    const cause = payload.error ?? new ConnectionError('disconnected', 'the stream ended')
    if (options.isPermanent(cause)) {
      giveUp(cause, payload.resumable)
      return
    }
    lastCause = cause
    void set({
      state: 'disconnected',
      resumable: payload.resumable,
      cause,
      reason: payload.reason,
    })
    // A `disconnected` handler may have stopped us.
    if (active && options.reconnect) schedule(payload.reason, payload.resumable)
  }

  const takeFatal = (): XMPPError | undefined => {
    const error = fatal
    fatal = undefined
    return error
  }

  const schedule = (reason: DisconnectReason, resumable: boolean): void => {
    attempt++
    const max = options.maxAttempts
    if (attempt > max) {
      const last = lastCause
      giveUp(
        new LifecycleError(
          'retries-exhausted',
          `gave up after ${max} attempt${max === 1 ? '' : 's'}${last ? `: ${last.message}` : ''}`,
          last,
        ),
        resumable,
      )
      return
    }
    // The first retry after a network failure is prompt: most drops are a moment's loss.
    const prompt = attempt === 1 && (reason === 'dropped' || reason === 'timeout')
    const delay = prompt ? 0 : backoffDelay(delayed++, backoff, options.random)
    // The timer first: a `reconnecting` handler that calls stop() clears it.
    retryTimer = ctx.setTimeout(() => {
      retryTimer = undefined
      attemptNow()
    }, delay)
    void set({ state: 'reconnecting', attempt, delay })
  }

  const attemptNow = (): void => {
    if (!active || conn.state !== 'disconnected') return
    const seen = disconnects
    conn.connect().then(
      // Online: the core's `online` hook has told the rest.
      () => undefined,
      (error: unknown) => {
        // The `disconnected` hook reported this failure already.
        if (seen !== disconnects || !active) return
        if ((error as { code?: unknown }).code === 'disposed') return
        // It failed before there was a transport (its factory threw): handled as a drop.
        onDisconnected({
          error:
            error instanceof XMPPError
              ? error
              : new ConnectionError('transport', describe(error), error),
          clean: false,
          reason: 'dropped',
          resumable: conn.resumable,
        })
      },
    )
  }

  const giveUp = (error: XMPPError, resumable: boolean): void => {
    halt()
    // Nobody will resume this session: what waits on it fails now.
    if (resumable || conn.resumable) conn.endSession(error)
    failWaiters(error)
    void set({ state: 'permanent-error', error })
  }

  const enterStopped = (): void => {
    halt()
    const stopped = new ConnectionError('stopped', 'stopped by the app')
    if (conn.state === 'disconnected' && conn.resumable) conn.endSession(stopped)
    failWaiters(stopped)
    if (current.state !== 'stopped' && current.state !== 'permanent-error') void set(STOPPED)
  }

  // Dead-connection detection: after `idleTimeout` ms without inbound data, probe; no answer
  // within `probeTimeout` ms and the transport is destroyed, which the core reports as a drop.

  const armIdle = (ms: number): void => {
    if (idleTimeout <= 0) return
    if (idleTimer !== undefined) ctx.clearTimeout(idleTimer)
    idleTimer = ctx.setTimeout(onIdle, ms)
  }

  const onIdle = (): void => {
    idleTimer = undefined
    if (conn.state !== 'online') return
    const quiet = Date.now() - lastInbound
    if (quiet < idleTimeout) armIdle(idleTimeout - quiet)
    else runProbe()
  }

  const runProbe = (): void => {
    const transport = conn.transport
    if (probing || conn.state !== 'online' || !transport) return
    const probe = options.probe ?? smProbe() ?? pingProbe()
    if (!probe) {
      // RFC 6120 §4.6.1: whitespace between elements keeps the link in use. Only on an XML
      // stream: a message framing (RFC 7395) allows no bytes outside elements.
      if (transport.framing.batch) transport.write(' ')
      armIdle(idleTimeout)
      return
    }
    const controller = new AbortController()
    const timeout = options.probeTimeout
    /** Ends this probe (if it is still the one running); true when it was. */
    const settle = (): boolean => {
      if (probing?.controller !== controller) return false
      ctx.clearTimeout(probing.timer)
      probing = undefined
      return true
    }
    const fail = (error: unknown) => {
      if (!settle()) return
      controller.abort(error)
      if (conn.transport !== transport) return
      transport.destroy(
        new ConnectionError(
          'disconnected',
          `no answer to the liveness probe: ${describe(error)}`,
          error,
        ),
      )
    }
    probing = {
      controller,
      timer: ctx.setTimeout(
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
      if (settle()) armIdle(idleTimeout)
    }, fail)
  }

  /**
   * XEP-0198 §4: with stream management enabled on this stream (a plugin registered as `sm`
   * whose API says `enabled`), an ack request: the cheapest question the server must answer.
   */
  const smProbe = (): Probe | undefined => {
    const sm = (conn.plugins as Record<string, unknown>).sm as AckProber | undefined
    if (sm?.enabled !== true || typeof sm.probe !== 'function') return undefined
    return (signal) => sm.probe(signal)
  }

  /** XEP-0199 §4.2: a ping to the server; any answer, an error included, proves it is there. */
  const pingProbe = (): Probe | undefined => {
    const iq = (conn.plugins as Record<string, unknown>).iq as IqRequester | undefined
    if (typeof iq?.request !== 'function') return undefined
    const timeout = options.probeTimeout
    const domain = conn.domain
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

  const stopWatching = (): void => {
    if (idleTimer !== undefined) ctx.clearTimeout(idleTimer)
    idleTimer = undefined
    const running = probing
    probing = undefined
    if (running) {
      ctx.clearTimeout(running.timer)
      running.controller.abort(new ConnectionError('disconnected', 'the stream ended'))
    }
  }

  const api: LifecycleApi = {
    get state() {
      return current
    },

    start() {
      if (options.signal?.aborted) {
        return Promise.reject(new ConnectionError('stopped', 'the lifecycle signal was aborted'))
      }
      active = true
      if (conn.state === 'online') return Promise.resolve()
      const started = new Promise<void>((resolve, reject) => {
        waiters.push({ resolve, reject })
      })
      if (conn.state === 'disconnected' && retryTimer === undefined) attemptNow()
      return started
    },

    async stop() {
      halt()
      if (conn.state !== 'disconnected') await conn.disconnect()
      // Already disconnected (a retry was pending), or the close raced a drop: say so here.
      enterStopped()
    },
  }

  hooks.on('state', ({ state, previous }) => {
    if (state !== 'connecting' || previous !== 'disconnected') return
    // An attempt started (ours, or the app's own connect()): no retry is pending any more.
    clearRetry()
    return set(conn.resumable ? RESUMING : CONNECTING)
  })
  hooks.on('online', ({ resumed }) => onOnline(resumed))
  hooks.on('disconnected', onDisconnected)
  // The app's own disconnect() means stop, also between a drop and the next attempt
  // (there is no stream to close then, and no `disconnected` hook follows).
  hooks.on('stop', () => {
    active = false
    clearRetry()
    if (conn.state === 'disconnected') enterStopped()
  })
  // Any inbound data proves the peer is there; chunks, not elements (whitespace counts).
  if (idleTimeout > 0) {
    ctx.onRaw((direction) => {
      if (direction === 'in') lastInbound = Date.now()
    })
  }
  const signal = options.signal
  if (signal) {
    const onAbort = () => {
      void api.stop()
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
    /** The network is back: retry now rather than at the end of a backoff delay. */
    const onNetworkBack = () => {
      // Online already: the network may have changed under the connection; check it.
      if (conn.state === 'online') runProbe()
      else if (active && retryTimer !== undefined) {
        clearRetry()
        attemptNow()
      }
    }
    target.addEventListener('online', onNetworkBack)
    target.addEventListener('offline', runProbe)
    ctx.onDispose(() => {
      target.removeEventListener?.('online', onNetworkBack)
      target.removeEventListener?.('offline', runProbe)
    })
  }
  ctx.onDispose(() => {
    halt()
    failWaiters(new ConnectionError('disposed', 'the connection was disposed'))
  })
  return api
}

const STOPPED: LifecycleState = Object.freeze({ state: 'stopped' })
const CONNECTING: LifecycleState = Object.freeze({ state: 'connecting' })
const RESUMING: LifecycleState = Object.freeze({ state: 'resuming' })
const ONLINE_FRESH: LifecycleState = Object.freeze({ state: 'online', resumed: false })
const ONLINE_RESUMED: LifecycleState = Object.freeze({ state: 'online', resumed: true })

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
