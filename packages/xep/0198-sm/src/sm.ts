import {
  type Connection,
  definePlugin,
  FeaturePriority,
  type InboundContext,
  type NegotiationContext,
  type Next,
  type OutboundContext,
  type PluginContext,
  type WrittenText,
} from '@core/connection'
import { StreamError, type XMPPError } from '@core/errors'
import { JID } from '@core/jid'
import { xml } from '@core/xml'
type Element = ReturnType<typeof xml>
import { AckQueue, Held } from './ack-queue.js'
import { advance, distance, parseUnsignedInt } from './counter.js'
import { SmError } from './errors.js'
import { parseStanzas, type SmSnapshot } from './snapshot.js'

/** XEP-0198 §2: the stream management namespace. */
export const NS_SM = 'urn:xmpp:sm:3'
/** XEP-0203: delayed delivery. */
export const NS_DELAY = 'urn:xmpp:delay'
const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind'
const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl'
/** The longest session id or location we keep (a hostile server could send megabytes). */
const MAX_ATTRIBUTE_LENGTH = 1024

export interface SmOptions {
  /** Ask the server to keep the session for resumption (XEP-0198 §5). Default true. */
  resume: boolean
  /** Preferred resumption window in seconds, sent as `max` in `<enable/>`. Default: the server's. */
  max: number | undefined
  /**
   * When send() settles with stream management on: `written` (default) once the stanza was
   * written, as without stream management (a stanza held for a resumption: once written after
   * it); `acked` once the server acknowledged it. Either way each stanza is kept until
   * acknowledged, resent after a resumption, and a stanza not delivered is reported through
   * the `sm-failed` hook (with `acked`, its send() also rejects). `allAcked()` and
   * `requestAck()` wait for acknowledgements explicitly. `acked` makes every awaited send()
   * wait for a round trip to the server.
   */
  settle: 'written' | 'acked'
  /** Send `<r/>` once this many stanzas were written since the last request. Default 100. */
  requestEvery: number
  /**
   * Send `<r/>` within this many milliseconds of a write, while stanzas are unacknowledged
   * and none was requested since. Bounds how long `await send()` waits for its ack. Default 200.
   */
  requestAfter: number
  /**
   * The most stanzas held unacknowledged (sent, or waiting for a resumption). A send() past it
   * rejects with SmError `queue-full` and the `sm-queue-full` hook fires. Default 10,000.
   */
  queueLimit: number
  /**
   * The most XML held unacknowledged, in characters of the stanzas as written (bytes for
   * ASCII): a send() while the held XML is at or past it rejects with SmError `queue-full` and
   * the `sm-queue-full` hook fires. Default 4 MiB (4,194,304).
   */
  queueBytes: number
  /**
   * What becomes of unacknowledged stanzas when the server refuses to resume: `fail` reports
   * each as not delivered (send() rejects, `sm-failed`); `resend` sends messages and presences
   * again on the new session with an XEP-0203 `<delay/>` and without their old `from` (iqs
   * are reported failed: their answers would have no caller). Default `fail`.
   */
  onResumeFailed: 'fail' | 'resend'
  /** Milliseconds to wait for `<enabled/>`. Default: the connection's negotiation timeout. */
  enableTimeout: number | undefined
  /** Milliseconds to wait for `<resumed/>`. Default: the connection's negotiation timeout. */
  resumeTimeout: number | undefined
  /**
   * Before `<resume h/>`, how long to wait for inbound stanzas still being handled, so that
   * `h` counts them. Default 2,000.
   */
  settleTimeout: number
  /**
   * Testing only: both counters of a fresh session start here instead of 0, to exercise the
   * wrap at 2^32 against a server told the same (`@test/server`'s `sm.counterStart`).
   */
  counterStart: number
}

const DEFAULTS: SmOptions = {
  settle: 'written',
  resume: true,
  max: undefined,
  requestEvery: 100,
  requestAfter: 200,
  queueLimit: 10_000,
  queueBytes: 4_194_304,
  onResumeFailed: 'fail',
  enableTimeout: undefined,
  resumeTimeout: undefined,
  settleTimeout: 2_000,
  counterStart: 0,
}

declare module '@core/connection' {
  interface HookMap {
    /** Stream management was enabled on a fresh session (XEP-0198 §3). */
    'sm-enabled': {
      resumable: boolean
      id: string | undefined
      max: number | undefined
      location: string | undefined
    }
    /** The session was resumed (XEP-0198 §5); `resent` stanzas were sent again. */
    'sm-resumed': { resent: number }
    /**
     * A stanza sent with stream management on was not delivered (with `settle: 'acked'` its
     * send() rejects too). `element` is read back from the XML written: the same content as
     * the stanza sent, not the same object.
     */
    'sm-failed': { element: Element; error: SmError }
    /**
     * A send() was refused: `pending` stanzas (`bytes` characters of XML) are unacknowledged,
     * at or past `queueLimit` (`limit`) or `queueBytes` (`byteLimit`).
     */
    'sm-queue-full': { limit: number; byteLimit: number; pending: number; bytes: number }
  }
}

/** What `connection.plugins.sm` offers. */
export interface SmApi {
  /** Stream management is on for the current session (a resumable one stays on across a drop). */
  readonly enabled: boolean
  /** The session can be resumed after a drop (`<enabled resume/>` with an id). */
  readonly resumable: boolean
  /** The session id from `<enabled/>`. */
  readonly id: string | undefined
  /** Where the server prefers resumption to happen (`location` of `<enabled/>`). */
  readonly location: string | undefined
  /** Stanzas sent and not yet acknowledged, including those held for a resumption. */
  readonly pending: number
  /** Stanzas handled from the server on this session (our `h`). */
  readonly inbound: number
  /** Stanzas sent on this session (the server's `h` once all are acknowledged). */
  readonly outbound: number
  /** How many stanzas were sent again after resumptions, in all. */
  readonly resent: number
  /** Why the server refused `<enable/>` last, if it did. */
  readonly enableError: SmError | undefined
  /**
   * A JSON-serializable snapshot of a resumable session (id, counters, unacknowledged
   * stanzas), for another connection, or another process, to resume it with importState().
   * undefined when the session is not resumable. The stanzas are the XML that was written. Read-only: this connection still reports the
   * stanzas' outcomes as it sees them.
   */
  exportState(): SmSnapshot | undefined
  /**
   * Takes over a session exported by exportState(), before connect(): the next connect()
   * resumes it, resending its unacknowledged stanzas. Returns one promise per imported stanza,
   * settling once acknowledged (failures also reach `sm-failed`). Throws SmError `not-enabled`
   * while this connection has a session of its own or is connected.
   */
  importState(snapshot: SmSnapshot): Promise<void>[]
  /**
   * Sends `<r/>` (XEP-0198 §4) and resolves with the server's `h` on the next `<a/>`. Rejects
   * with SmError `not-enabled` without stream management, `ack-aborted` when the stream or
   * session ends first, or the signal's reason.
   */
  requestAck(options?: { signal?: AbortSignal }): Promise<number>
  /**
   * For dead-connection detection: sends `<r/>` and resolves on the next `<a/>`. Rejects when
   * `signal` aborts (with its reason), or the stream or session ends.
   */
  probe(signal?: AbortSignal): Promise<void>
  /**
   * Resolves once every stanza sent so far was acknowledged (asking with `<r/>` if needed).
   * Rejects when the session ends first or `signal` aborts.
   */
  allAcked(signal?: AbortSignal): Promise<void>
  /**
   * Resolves once fewer than `n` stanzas are unacknowledged (at once when they already are),
   * asking with `<r/>` unless an ack is already on its way: a sender that streams many stanzas
   * awaits it before each batch to stay within `queueLimit` without pausing until everything
   * is acknowledged. Rejects when the session ends first or `signal` aborts.
   */
  whenBelow(n: number, signal?: AbortSignal): Promise<void>
}

/**
 * XEP-0198 stream management: acks, a bounded queue of unacknowledged stanzas whose send()
 * settles on ack or failure, and session resumption on the next connect() of the same
 * connection.
 */
export const sm = definePlugin({
  name: 'sm',
  options: DEFAULTS,
  setup(ctx, options): SmApi {
    const manager = new StreamManager(ctx, { ...DEFAULTS, ...options })
    return manager
  },
})

type SmState =
  /** No stream management session. */
  | 'off'
  /** Enabled on the current stream. */
  | 'on'
  /** A resumable session whose stream is gone (or being negotiated). */
  | 'detached'

interface AckWaiter {
  resolve: (h: number) => void
  reject: (error: unknown) => void
}

/** Waits until fewer than `below` stanzas are unacknowledged (allAcked(): below 1). */
interface RoomWaiter extends AckWaiter {
  below: number
}

class StreamManager implements SmApi {
  readonly #ctx: PluginContext
  readonly #conn: Connection
  readonly #options: SmOptions
  #state: SmState = 'off'
  #id: string | undefined
  #max: number | undefined
  #location: string | undefined
  /** When a detached session can no longer be resumed (ms since the epoch). */
  #expiresAt = Number.POSITIVE_INFINITY
  #expiryTimer: ReturnType<typeof setTimeout> | undefined
  /** Our `h`: stanzas handled from the server, mod 2^32 (XEP-0198 §4). */
  #inbound = 0
  /** The first stream of this session: stanzas of older streams are not counted. */
  #inboundStream = Number.POSITIVE_INFINITY
  /** The server's last `h`. */
  #acked = 0
  readonly #queue = new AckQueue()
  /** Held stanzas being sent again: the outbound middleware files them back. */
  readonly #resends = new Map<Element, Held>()
  #resent = 0
  #sinceRequest = 0
  #requestTimer: ReturnType<typeof setTimeout> | undefined
  #ackWaiters: AckWaiter[] = []
  #roomWaiters: RoomWaiter[] = []
  /** `<r/>` sent on this stream whose `<a/>` has not come yet (each gets one, XEP-0198 §4). */
  #outstanding = 0
  /** Unacknowledged stanzas of a session the server refused to resume (`resend` policy). */
  #failover: Held[] = []
  /** The error we ended the last session with ourselves. */
  #givenUp: XMPPError | undefined
  #enableError: SmError | undefined
  /** One `<r/>` and one `<a/>`, reused: the serializer reads them when they are sent. */
  readonly #request = xml('r', { xmlns: NS_SM })
  readonly #answer = xml('a', { xmlns: NS_SM, h: '0' })

  constructor(ctx: PluginContext, options: SmOptions) {
    this.#ctx = ctx
    this.#conn = ctx.connection
    this.#options = options
    // Resumption (XEP-0198 §5), before binding. Not 'done': binding still runs and skips
    // itself when nc.resumed is set.
    ctx.feature({
      name: 'sm-resume',
      priority: FeaturePriority.RESUME,
      applies: (features) => this.#canResume(features),
      negotiate: async (_features, nc) => {
        await this.#resume(nc)
        return 'continue'
      },
    })
    // Enabling (XEP-0198 §3), after binding.
    ctx.feature({
      name: 'sm-enable',
      priority: FeaturePriority.SM_ENABLE,
      applies: (features, nc) => this.#enableApplies(features, nc),
      negotiate: async (features, nc) => {
        await this.#enable(features, nc)
        return 'continue'
      },
    })
    // Outermost inbound: <r/> and <a/> are ours whatever else is registered.
    ctx.inbound((c, next) => this.#onInbound(c, next), { priority: Number.MIN_SAFE_INTEGER })
    // Innermost outbound: what it sees is what is written, in write order.
    ctx.outbound((c, next) => this.#onOutbound(c, next), { priority: Number.MAX_SAFE_INTEGER })
    ctx.onHandled((c) => {
      // XEP-0198 §4: a stanza counts once handled, whichever middleware took it.
      if (c.kind === 'stanza' && this.#state !== 'off' && c.stream >= this.#inboundStream) {
        this.#inbound = advance(this.#inbound)
      }
    })
    // Stanzas sent between <resumed/> (or <enabled/>) and the stream going online waited in
    // the queue: they go out first, in order, as soon as it is online (a synchronous hook,
    // before any other send can pass them).
    ctx.hooks.on('state', ({ state }) => {
      if (state === 'online') this.#writeWaiting()
    })
    ctx.hooks.on('closing', () => this.#onClosing())
    ctx.hooks.on('disconnected', ({ resumable, error }) => this.#onDisconnected(resumable, error))
    ctx.hooks.on('session-end', ({ error }) => {
      // Our own give-up already ended it (and a new session may be negotiated by now).
      if (error === undefined || error !== this.#givenUp) this.#endSession(error)
    })
    ctx.hooks.on('online', ({ resumed }) => {
      // What was resent during the resumption gets its ack request now.
      if (resumed && this.#queue.written > 0) this.#sendRequest()
      // A fresh session while the old one is still kept: no feature could resume or give it
      // up (the server offered neither <sm/> nor <bind/>). It is lost.
      if (!resumed && this.#state === 'detached') {
        this.#giveUp(new SmError('resume-failed', 'the server did not offer stream management'))
      }
    })
    ctx.onDispose(() => {
      this.#endSession(new SmError('not-delivered', 'the connection was disposed'))
    })
  }

  // --- API -------------------------------------------------------------------------------

  get enabled(): boolean {
    return this.#state !== 'off'
  }
  get resumable(): boolean {
    return this.#state !== 'off' && this.#id !== undefined
  }
  get id(): string | undefined {
    return this.#id
  }
  get location(): string | undefined {
    return this.#location
  }
  get pending(): number {
    return this.#queue.size
  }
  get inbound(): number {
    return this.#inbound
  }
  get outbound(): number {
    return advance(this.#acked, this.#queue.written)
  }
  get resent(): number {
    return this.#resent
  }
  get enableError(): SmError | undefined {
    return this.#enableError
  }

  exportState(): SmSnapshot | undefined {
    if (this.#state === 'off' || this.#id === undefined) return undefined
    const unacked: string[] = []
    for (let i = 0; i < this.#queue.size; i++) unacked.push(this.#queue.at(i).data)
    return {
      version: 1,
      id: this.#id,
      jid: this.#conn.jid?.toString(),
      location: this.#location,
      max: this.#max,
      expiresAt: Number.isFinite(this.#expiresAt) ? this.#expiresAt : undefined,
      inbound: this.#inbound,
      acked: this.#acked,
      written: this.#queue.written,
      unacked,
    }
  }

  importState(snapshot: SmSnapshot): Promise<void>[] {
    if (this.#state !== 'off' || this.#conn.state !== 'disconnected') {
      throw new SmError(
        'not-enabled',
        'importState() needs a disconnected connection without a session of its own',
      )
    }
    const id = cappedString(snapshot.id)
    const inbound = parseUnsignedInt(String(snapshot.inbound))
    const acked = parseUnsignedInt(String(snapshot.acked))
    if (
      snapshot.version !== 1 ||
      id === undefined ||
      inbound === undefined ||
      acked === undefined
    ) {
      throw new SmError('protocol', 'not a stream management snapshot (version 1)')
    }
    const elements = parseStanzas(snapshot.unacked)
    const written = Math.min(Math.max(0, Math.trunc(snapshot.written)), elements.length)
    this.#id = id
    this.#location = cappedString(snapshot.location)
    this.#max = snapshot.max
    this.#expiresAt = snapshot.expiresAt ?? Number.POSITIVE_INFINITY
    this.#inbound = inbound
    this.#acked = acked
    this.#inboundStream = 0
    const promises: Promise<void>[] = []
    for (const element of elements) {
      const held = new Held(element, undefined, Date.now())
      // Its failure also goes to sm-failed: a caller that drops these promises loses nothing.
      held.promise.then(undefined, reportedThroughHook)
      this.#queue.push(held)
      promises.push(held.promise)
    }
    this.#queue.written = written
    if (snapshot.jid !== undefined) this.#conn.jid = JID.parse(snapshot.jid)
    this.#state = 'detached'
    this.#conn.resumable = true
    const location = parseLocation(this.#location)
    if (location) this.#conn.nextTarget = location
    this.#armExpiry()
    return promises
  }

  requestAck(options: { signal?: AbortSignal } = {}): Promise<number> {
    if (this.#state !== 'on' || this.#conn.state !== 'online') {
      return Promise.reject(
        new SmError('not-enabled', 'stream management is not enabled on an online stream'),
      )
    }
    const waiting = this.#wait(undefined, options.signal)
    if (!options.signal?.aborted) this.#sendRequest()
    return waiting
  }

  probe(signal?: AbortSignal): Promise<void> {
    return this.requestAck(signal ? { signal } : {}).then(ignoreValue)
  }

  allAcked(signal?: AbortSignal): Promise<void> {
    if (this.#queue.size === 0) return Promise.resolve()
    if (this.#state === 'off') {
      return Promise.reject(new SmError('not-enabled', 'stream management is not enabled'))
    }
    const waiting = this.#wait(1, signal).then(ignoreValue)
    if (!signal?.aborted) this.#sendRequest()
    return waiting
  }

  whenBelow(n: number, signal?: AbortSignal): Promise<void> {
    if (this.#queue.size < n) return Promise.resolve()
    if (this.#state === 'off') {
      return Promise.reject(new SmError('not-enabled', 'stream management is not enabled'))
    }
    const waiting = this.#wait(n, signal).then(ignoreValue)
    // An <a/> already on its way acknowledges everything written before its <r/>.
    if (!signal?.aborted && (this.#outstanding === 0 || this.#sinceRequest > 0)) this.#sendRequest()
    return waiting
  }

  /**
   * Waits on the next `<a/>` (or, with `below`, until fewer than `below` stanzas are
   * unacknowledged); `signal` takes it off the list.
   */
  #wait(below: number | undefined, signal: AbortSignal | undefined): Promise<number> {
    if (signal?.aborted) return Promise.reject(abortReason(signal))
    return new Promise<number>((resolve, reject) => {
      const onAbort = () => {
        const list: AckWaiter[] = below === undefined ? this.#ackWaiters : this.#roomWaiters
        const i = list.indexOf(waiter)
        if (i >= 0) list.splice(i, 1)
        reject(abortReason(signal as AbortSignal))
      }
      const waiter: RoomWaiter = {
        below: below ?? 0,
        resolve: (h) => {
          signal?.removeEventListener('abort', onAbort)
          resolve(h)
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort)
          reject(error)
        },
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      if (below === undefined) this.#ackWaiters.push(waiter)
      else this.#roomWaiters.push(waiter)
    })
  }

  // --- Outbound --------------------------------------------------------------------------

  #onOutbound(c: OutboundContext, next: Next): void | Promise<void> {
    if (c.kind !== 'stanza') return next()
    if (this.#resends.size > 0) {
      const resent = this.#resends.get(c.element)
      if (resent !== undefined) {
        this.#resends.delete(c.element)
        const result = next()
        if (c.data !== undefined) resent.compact(c.data)
        // Filed back as written on this stream, in order (it never left the queue).
        this.#queue.written++
        this.#afterWrite()
        return result
      }
    }
    const state = this.#state
    if (state === 'off') return next()
    if (state === 'on' && !c.negotiation && this.#conn.state === 'online') {
      this.#checkRoom()
      const result = next()
      // Written (or the terminal threw and nothing is held): XEP-0198 §4, it counts now.
      // The terminal sets data when it writes (it threw otherwise).
      const data = c.data as string
      if (this.#options.settle === 'acked') {
        const held = new Held(undefined, data, 0)
        this.#queue.push(held)
        c.delivery = held.promise
      } else if (c.offset >= 0) {
        // Nobody waits on it: where it sits in the text written is all there is to keep.
        this.#queue.pushWritten(c.batch as WrittenText, c.offset, data.length)
      } else {
        // Each stanza its own write (WebSocket): its XML alone.
        this.#queue.push(data)
      }
      this.#queue.written++
      this.#afterWrite()
      return result
    }
    if (c.negotiation) return next()
    if (state === 'detached' || (state === 'on' && this.#conn.state !== 'online')) {
      // XEP-0198 §5: held for the resumption, sent once the session is back.
      this.#checkRoom()
      const held = new Held(c.element, undefined, Date.now())
      this.#queue.push(held)
      c.delivery = this.#options.settle === 'acked' ? held.promise : held.writtenPromise
      return
    }
    return next()
  }

  /** Writes the queued stanzas that no stream carried yet (see the 'state' hook). */
  #writeWaiting(): void {
    const queue = this.#queue
    if (this.#state !== 'on' || queue.written >= queue.size) return
    for (let i = queue.written; i < queue.size; i++) this.#sendHeld(queue.at(i))
  }

  /** Sends a held stanza (again): the outbound middleware files it back as written. */
  #sendHeld(held: Held, nc?: NegotiationContext): void {
    const element = held.element
    this.#resends.set(element, held)
    ;(nc ?? this.#conn).send(element).then(() => held.written(), this.#onWriteFailed)
  }

  #checkRoom(): void {
    const { queueLimit: limit, queueBytes: byteLimit } = this.#options
    const pending = this.#queue.size
    const bytes = this.#queue.bytes
    if (pending < limit && bytes < byteLimit) return
    void this.#conn.hooks.emit('sm-queue-full', { limit, byteLimit, pending, bytes })
    throw new SmError(
      'queue-full',
      `${pending} stanzas (${bytes} characters) unacknowledged (queueLimit ${limit}, queueBytes ${byteLimit}): wait for acks`,
    )
  }

  /** XEP-0198 §4: the client may request an ack when it likes; our policy is N or T. */
  #afterWrite(): void {
    // While an <r/> is unanswered, the next waits for its <a/> (see #onAck): a sender faster
    // than the round trip asks once per round trip, not once per requestEvery stanzas.
    if (++this.#sinceRequest >= this.#options.requestEvery && this.#outstanding === 0) {
      this.#sendRequest()
      return
    }
    // One timer at a time, left running across requests (not one per request): when it
    // fires, it asks only if something was written since the last request.
    if (this.#requestTimer === undefined) {
      this.#requestTimer = this.#ctx.setTimeout(this.#onRequestTimer, this.#options.requestAfter)
    }
  }

  #sendRequest(): void {
    // While a resumption is negotiated, the request waits for 'online' (see there).
    if (this.#state !== 'on' || this.#conn.state !== 'online') return
    this.#sinceRequest = 0
    this.#outstanding++
    this.#conn.send(this.#request).then(undefined, this.#onWriteFailed)
  }

  readonly #onRequestTimer = (): void => {
    this.#requestTimer = undefined
    if (this.#sinceRequest > 0 && this.#queue.written > 0) this.#sendRequest()
  }

  /** A nonza that could not be written: the stream is ending, whose end is reported anyway. */
  readonly #onWriteFailed = (error: unknown): void => {
    if (this.#conn.state === 'online')
      void this.#conn.hooks.emit('error', { error: toError(error) })
  }

  // --- Inbound ---------------------------------------------------------------------------

  #onInbound(c: InboundContext, next: Next): void | Promise<void> {
    if (c.kind === 'stanza' || c.element.attrs.xmlns !== NS_SM) return next()
    c.handled = true
    switch (c.name) {
      case 'r':
        // XEP-0198 §4: answer every request at once with what we handled.
        if (this.#state === 'on') {
          this.#answer.attrs.h = String(this.#inbound)
          this.#conn.send(this.#answer).then(undefined, this.#onWriteFailed)
        }
        return
      case 'a':
        if (this.#state === 'on') this.#onAck(c.element)
        return
      default:
        // <enabled/>, <resumed/> or <failed/> outside negotiation: unsolicited, never trusted
        // (XEP-0198 §3, §5 answer our own requests only). Ignored.
        return
    }
  }

  /** XEP-0198 §4: `h` acknowledges every stanza up to it. */
  #onAck(a: Element): void {
    const h = parseUnsignedInt(a.attrs.h)
    if (h === undefined) {
      this.#protocolError(
        `the server sent <a/> with a malformed h (${describeValue(a.attrs.h)})`,
        a,
      )
      return
    }
    if (this.#outstanding > 0) this.#outstanding--
    if (!this.#applyAck(h, a)) return
    if (this.#outstanding === 0 && this.#sinceRequest >= this.#options.requestEvery) {
      this.#sendRequest()
    }
    const waiters = this.#ackWaiters
    if (waiters.length > 0) {
      this.#ackWaiters = []
      for (const w of waiters) w.resolve(h)
    }
  }

  /** Acknowledges up to `h`; false (and the stream failed) when `h` is beyond what was sent. */
  #applyAck(h: number, element: Element): boolean {
    const n = distance(this.#acked, h)
    const written = this.#queue.written
    if (n > written) {
      // XEP-0198 §4: an ack for more than was sent ends the stream with
      // undefined-condition and <handled-count-too-high/>.
      const sent = advance(this.#acked, written)
      this.#protocolError(
        `the server acknowledged ${h} stanzas, but only ${sent} were sent`,
        element,
        xml('handled-count-too-high', { xmlns: NS_SM, h: String(h), 'send-count': String(sent) }),
      )
      return false
    }
    this.#acked = h
    if (n === 0) return true
    this.#queue.ack(n)
    if (this.#roomWaiters.length > 0) this.#resolveRoomWaiters(h)
    return true
  }

  /** Resolves the waiters of whenBelow() and allAcked() that have their room now. */
  #resolveRoomWaiters(h: number): void {
    const size = this.#queue.size
    const waiters = this.#roomWaiters
    const still: RoomWaiter[] = []
    this.#roomWaiters = still
    for (const w of waiters) {
      if (size < w.below) w.resolve(h)
      else still.push(w)
    }
    // Those still waiting ask again (for what was written since), not after requestAfter.
    if (still.length > 0 && (this.#outstanding === 0 || this.#sinceRequest > 0)) this.#sendRequest()
  }

  /**
   * The server broke the protocol: the session is dropped first (no reconnect loop into the
   * same error), then the stream ends with undefined-condition.
   */
  #protocolError(message: string, element: Element, appCondition?: Element): SmError {
    const error = new SmError('protocol', message, { condition: 'undefined-condition', element })
    this.#giveUp(error)
    this.#ctx.fail(new StreamError('undefined-condition', message, { cause: error }), appCondition)
    return error
  }

  // --- Connection events -----------------------------------------------------------------

  /** XEP-0198 §4: before our clean close, ask for a last ack and tell ours. */
  #onClosing(): void {
    if (this.#state !== 'on') return
    if (this.#queue.written > 0) this.#sendRequest()
    this.#answer.attrs.h = String(this.#inbound)
    this.#conn.send(this.#answer).then(undefined, this.#onWriteFailed)
  }

  #onDisconnected(resumable: boolean, error: XMPPError | undefined): void {
    this.#ctx.clearTimeout(this.#requestTimer)
    this.#requestTimer = undefined
    this.#sinceRequest = 0
    this.#outstanding = 0
    this.#rejectAckWaiters(
      new SmError('ack-aborted', 'the stream ended before the ack came', { cause: error }),
    )
    if (this.#state === 'detached') {
      // A resumption attempt failed before it could resume: the window keeps running.
      this.#armExpiry()
      return
    }
    if (this.#state !== 'on') return
    if (!resumable || this.#id === undefined) return // session-end follows
    this.#state = 'detached'
    // XEP-0198 §5: resume where the server prefers, under the same TLS and identity policy.
    const location = parseLocation(this.#location)
    if (location) this.#conn.nextTarget = location
    if (this.#max !== undefined && this.#expiresAt === Number.POSITIVE_INFINITY) {
      this.#expiresAt = Date.now() + this.#max * 1000
    }
    this.#armExpiry()
  }

  /** The server keeps a detached session `max` seconds at most (XEP-0198 §5). */
  #armExpiry(): void {
    if (this.#expiresAt === Number.POSITIVE_INFINITY) return
    this.#ctx.clearTimeout(this.#expiryTimer)
    this.#expiryTimer = this.#ctx.setTimeout(
      () => {
        this.#expiryTimer = undefined
        if (this.#state !== 'detached') return
        // An attempt in flight decides by itself (its resume answer, or its failure).
        if (this.#conn.state !== 'disconnected') return
        this.#giveUp(
          new SmError('session-expired', `the session was not resumed within ${this.#max} s`),
        )
      },
      Math.max(0, this.#expiresAt - Date.now()),
    )
  }

  get #expired(): boolean {
    return Date.now() >= this.#expiresAt
  }

  /** Ends the session from here: the connection's session ends too (session-end). */
  #giveUp(error: SmError): void {
    if (this.#state === 'off') return
    this.#givenUp = error
    this.#endSession(error)
    this.#conn.endSession(error)
  }

  /** The session is over: every unacknowledged stanza is reported not delivered. */
  #endSession(cause: XMPPError | undefined): void {
    this.#ctx.clearTimeout(this.#expiryTimer)
    this.#ctx.clearTimeout(this.#requestTimer)
    this.#expiryTimer = undefined
    this.#requestTimer = undefined
    this.#sinceRequest = 0
    this.#outstanding = 0
    this.#state = 'off'
    this.#id = undefined
    this.#expiresAt = Number.POSITIVE_INFINITY
    this.#inboundStream = Number.POSITIVE_INFINITY
    this.#conn.resumable = false
    this.#resends.clear()
    const error =
      cause instanceof SmError && cause.code === 'not-delivered'
        ? cause
        : new SmError('not-delivered', `the session ended: ${cause?.message ?? 'closed'}`, {
            cause,
          })
    this.#rejectAckWaiters(error)
    const drains = this.#roomWaiters
    this.#roomWaiters = []
    for (const w of drains) w.reject(error)
    this.#fail(this.#queue.drain(), error)
    const failover = this.#failover
    this.#failover = []
    this.#fail(failover, error)
  }

  #fail(items: Held[], error: SmError): void {
    for (const held of items) {
      held.failed(error)
      void this.#conn.hooks.emit('sm-failed', { element: held.element, error })
    }
  }

  #rejectAckWaiters(error: SmError): void {
    const waiters = this.#ackWaiters
    if (waiters.length === 0) return
    this.#ackWaiters = []
    for (const w of waiters) w.reject(error)
  }

  // --- Negotiation -----------------------------------------------------------------------

  /** Whether a resumption may be tried with these features. */
  #canResume(features: Element): boolean {
    return (
      this.#state === 'detached' &&
      this.#id !== undefined &&
      !this.#expired &&
      features.getChild('sm', NS_SM) !== undefined &&
      features.getChild('mechanisms', NS_SASL) === undefined
    )
  }

  /** XEP-0198 §5: `<resume previd h/>` before binding. */
  async #resume(nc: NegotiationContext): Promise<void> {
    const previd = this.#id as string
    // h counts what was handled: let stanzas still in handlers finish first (bounded).
    await this.#ctx.inboundSettled(this.#options.settleTimeout)
    await nc.send(xml('resume', { xmlns: NS_SM, previd, h: String(this.#inbound) }))
    const answer = await nc.waitFor(isResumeAnswer, {
      ...(this.#options.resumeTimeout === undefined
        ? {}
        : { timeout: this.#options.resumeTimeout }),
    })
    if (answer.name === 'failed') {
      this.#resumeFailed(answer)
      return
    }
    // A <resumed/> for another session is not ours to trust.
    if (answer.attrs.previd !== previd) {
      const error = new SmError(
        'protocol',
        `the server resumed session "${describeValue(answer.attrs.previd)}", not ours`,
        { element: answer },
      )
      this.#giveUp(error)
      throw error
    }
    const h = parseUnsignedInt(answer.attrs.h)
    if (h === undefined) {
      throw this.#protocolError(
        `the server sent <resumed/> with a malformed h (${describeValue(answer.attrs.h)})`,
        answer,
      )
    }
    if (!this.#applyAck(h, answer)) throw new SmError('protocol', 'ack beyond what was sent')
    // XEP-0198 §5: everything still unacknowledged is sent again, in order, counters kept.
    this.#state = 'on'
    this.#ctx.clearTimeout(this.#expiryTimer)
    this.#expiryTimer = undefined
    this.#expiresAt = Number.POSITIVE_INFINITY
    const resent = this.#resendAll(nc)
    nc.resumed = true
    void this.#conn.hooks.emit('sm-resumed', { resent })
  }

  #resendAll(nc: NegotiationContext): number {
    const queue = this.#queue
    queue.written = 0
    const n = queue.size
    for (let i = 0; i < n; i++) this.#sendHeld(queue.at(i), nc)
    this.#resent += n
    return n
  }

  /** XEP-0198 §5: `<failed/>`: apply its h, then give the old session up. */
  #resumeFailed(failed: Element): void {
    const h = parseUnsignedInt(failed.attrs.h)
    // An h beyond what was sent is not trusted: then nothing counts as acknowledged.
    if (h !== undefined && distance(this.#acked, h) <= this.#queue.written) {
      this.#applyAck(h, failed)
    }
    const condition = failed.getChildElements()[0]?.getName()
    const error = new SmError(
      'resume-failed',
      `the server could not resume the session${condition ? ` (${condition})` : ''}`,
      { condition, element: failed },
    )
    this.#abandon(error)
  }

  /** Gives up a detached session before a fresh one is bound, by the `onResumeFailed` policy. */
  #abandon(error: SmError): void {
    const keep: Held[] = []
    if (this.#options.onResumeFailed === 'resend') {
      // Kept aside for the new session; iqs fail (their callers got session-end).
      const fail: Held[] = []
      for (const held of this.#queue.drain()) {
        ;(held.element.name === 'iq' ? fail : keep).push(held)
      }
      this.#fail(
        fail,
        new SmError('not-delivered', 'an iq of a session that could not be resumed', {
          cause: error,
        }),
      )
    }
    this.#giveUp(error)
    // Set after: ending the session fails whatever is kept aside.
    this.#failover = keep
  }

  /** Whether a fresh session's features call for the enable feature. */
  #enableApplies(features: Element, nc: NegotiationContext): boolean {
    if (nc.resumed) return false
    const bound = features.getChild('bind', NS_BIND) !== undefined
    const offered = features.getChild('sm', NS_SM) !== undefined
    return offered || (bound && this.#state === 'detached')
  }

  /** XEP-0198 §3: `<enable/>` after binding. */
  async #enable(features: Element, nc: NegotiationContext): Promise<void> {
    if (nc.resumed) return
    if (this.#state === 'detached') {
      // The resumption was not tried (expired, or no <sm/> offered): the old session is lost.
      this.#abandon(
        new SmError(
          this.#expired ? 'session-expired' : 'resume-failed',
          this.#expired
            ? 'the session expired before it could be resumed'
            : 'resumption was not offered',
        ),
      )
    }
    const failover = this.#failover
    this.#failover = []
    if (features.getChild('sm', NS_SM) === undefined) {
      this.#fail(failover, new SmError('not-delivered', 'stream management is no longer offered'))
      return
    }
    const attrs: Record<string, string> = { xmlns: NS_SM }
    if (this.#options.resume) attrs.resume = 'true'
    if (this.#options.max !== undefined) attrs.max = String(this.#options.max)
    // The outbound counter starts with <enable/>, the inbound one with <enabled/> (§4).
    this.#acked = this.#options.counterStart >>> 0
    this.#queue.written = 0
    await nc.send(xml('enable', attrs))
    const answer = await nc.waitFor(isEnableAnswer, {
      ...(this.#options.enableTimeout === undefined
        ? {}
        : { timeout: this.#options.enableTimeout }),
    })
    if (answer.name === 'failed') {
      const condition = answer.getChildElements()[0]?.getName()
      this.#enableError = new SmError(
        'enable-failed',
        `the server refused stream management${condition ? ` (${condition})` : ''}`,
        { condition, element: answer },
      )
      this.#fail(failover, this.#enableError)
      return
    }
    this.#enableError = undefined
    // §3: resumable only when resume is "true" or "1" and an id is present.
    const id = cappedString(answer.attrs.id)
    const resumable =
      this.#options.resume && (answer.attrs.resume === 'true' || answer.attrs.resume === '1')
    this.#id = resumable ? id : undefined
    this.#max = parseUnsignedInt(answer.attrs.max)
    this.#location = resumable ? cappedString(answer.attrs.location) : undefined
    this.#inbound = this.#options.counterStart >>> 0
    this.#inboundStream = this.#conn.stream
    this.#expiresAt = Number.POSITIVE_INFINITY
    this.#state = 'on'
    this.#conn.resumable = this.#id !== undefined
    void this.#conn.hooks.emit('sm-enabled', {
      resumable: this.#id !== undefined,
      id: this.#id,
      max: this.#max,
      location: this.#location,
    })
    if (failover.length > 0) this.#resendDelayed(failover, nc)
  }

  /** `onResumeFailed: 'resend'`: XEP-0203 §3 delay stamp, the old session's `from` removed. */
  #resendDelayed(items: Held[], nc: NegotiationContext): void {
    for (const held of items) {
      const old = held.element
      const { from: _from, ...attrs } = old.attrs as Record<string, string>
      const copy = xml(old.name, attrs)
      copy.children = [
        ...old.children,
        xml('delay', { xmlns: NS_DELAY, stamp: new Date(held.time || Date.now()).toISOString() }),
      ]
      held.element = copy
      this.#queue.push(held)
      this.#sendHeld(held, nc)
    }
    this.#resent += items.length
  }
}

function isResumeAnswer(el: Element): boolean {
  return (el.name === 'resumed' || el.name === 'failed') && el.attrs.xmlns === NS_SM
}

function isEnableAnswer(el: Element): boolean {
  return (el.name === 'enabled' || el.name === 'failed') && el.attrs.xmlns === NS_SM
}

function cappedString(value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '' || value.length > MAX_ATTRIBUTE_LENGTH) {
    return undefined
  }
  return value
}

/** XEP-0198 §3: `location` is `host`, `host:port` or `[v6]:port`. */
export function parseLocation(
  value: string | undefined,
): { host: string; port?: number } | undefined {
  // An IPv6 literal in brackets (group 1) or a name / IPv4 address (group 2), then a port.
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:/[\]]+))(?::(\d{1,5}))?$/.exec(value ?? '')
  if (!match) return undefined
  const host = (match[1] ?? match[2]) as string
  if (match[3] === undefined) return { host }
  const port = Number(match[3])
  return port >= 1 && port <= 65535 ? { host, port } : undefined
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'absent'
  const text = String(value)
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason
  return reason instanceof Error
    ? reason
    : new SmError('ack-aborted', 'the ack request was aborted', { cause: reason })
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error))
}

function ignoreValue(): void {}

/** Imported stanzas: a failure is reported through the `sm-failed` hook as well. */
function reportedThroughHook(): void {}
