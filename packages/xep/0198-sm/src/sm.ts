import {
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
  /**
   * Send `<r/>` once this many stanzas were written since the last request and the last `<r/>`
   * was answered (one request in flight: a sender faster than the round trip asks once per
   * round trip). Default 100.
   */
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
  requestAck(options?: { signal?: AbortSignal | undefined }): Promise<number>
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
  setup: (ctx, options): SmApi => manage(ctx, { ...DEFAULTS, ...options }),
})

/** Someone waiting on acks: `below` -1 for the next `<a/>` (requestAck), else for room. */
interface Waiter {
  below: number
  end(h: number, error?: unknown): void
}

/** Middleware priorities: SM's inbound layer runs first, its outbound layer last. */
const EDGE = Number.MAX_SAFE_INTEGER
const NOT_OFFERED = 'no <sm/> offered'

/**
 * One connection's stream management. Its state lives in this closure (the plugin's API is
 * the object returned): `off` (no session), `on` (enabled on the current stream) or
 * `detached` (a resumable session whose stream is gone, or being negotiated).
 */
function manage(ctx: PluginContext, o: SmOptions): SmApi {
  const conn = ctx.connection
  const hooks = conn.hooks
  const queue = new AckQueue()
  /** Held stanzas being sent again: the outbound middleware files them back. */
  const resends = new Map<Element, Held>()
  /** One `<r/>` and one `<a/>`, reused: the serializer reads them when they are sent. */
  const request = xml('r', { xmlns: NS_SM })
  const answer = xml('a', { xmlns: NS_SM, h: '0' })
  let state: 'off' | 'on' | 'detached' = 'off'
  let id: string | undefined
  let max: number | undefined
  let location: string | undefined
  /** When a detached session can no longer be resumed (ms since the epoch). */
  let expiresAt = Infinity
  let expiryTimer: ReturnType<typeof setTimeout> | undefined
  /** Our `h`: stanzas handled from the server, mod 2^32 (XEP-0198 §4). */
  let inbound = 0
  /** The first stream of this session: stanzas of older streams are not counted. */
  let inboundStream = Infinity
  /** The server's last `h`. */
  let acked = 0
  let resent = 0
  let sinceRequest = 0
  let requestTimer: ReturnType<typeof setTimeout> | undefined
  /** `<r/>` sent on this stream whose `<a/>` has not come yet (each gets one, §4). */
  let outstanding = 0
  let waiters: Waiter[] = []
  /** Unacknowledged stanzas of a session the server refused to resume (`resend` policy). */
  let failover: Held[] = []
  /** The error we ended the last session with ourselves. */
  let givenUp: XMPPError | undefined
  let enableError: SmError | undefined

  // --- Requests and acks (XEP-0198 §4) -------------------------------------------------

  /** A write that failed: the stream is ending, whose end is reported anyway. */
  const writeFailed = (error: unknown): void => {
    if (conn.state === 'online') {
      void hooks.emit('error', { error: error instanceof Error ? error : new Error(String(error)) })
    }
  }

  const write = (el: Element): void => {
    conn.send(el).then(undefined, writeFailed)
  }

  const sendRequest = (): void => {
    // While a resumption is negotiated, the request waits for 'online' (see there).
    if (state !== 'on' || conn.state !== 'online') return
    sinceRequest = 0
    outstanding++
    write(request)
  }

  /** Asks for an ack unless one on its way covers everything written. */
  const ask = (): void => {
    if (outstanding === 0 || sinceRequest > 0) sendRequest()
  }

  /** The client may request an ack when it likes (§4); our policy is N stanzas or T ms. */
  const afterWrite = (): void => {
    // While an <r/> is unanswered, the next waits for its <a/> (see onAck): a sender faster
    // than the round trip asks once per round trip, not once per requestEvery stanzas.
    if (++sinceRequest >= o.requestEvery && outstanding === 0) {
      sendRequest()
      return
    }
    // One timer at a time, left running across requests (not one per request): when it
    // fires, it asks only if something was written since the last request.
    requestTimer ??= ctx.setTimeout(() => {
      requestTimer = undefined
      if (sinceRequest > 0 && queue.written > 0) sendRequest()
    }, o.requestAfter)
  }

  /** Ends the waiters `pick` chooses, with `h` or `error`; keeps the others. */
  const settle = (pick: (w: Waiter) => boolean, h: number, error?: unknown): void => {
    const all = waiters
    if (all.length === 0) return
    waiters = all.filter((w) => !pick(w))
    for (const w of all) if (pick(w)) w.end(h, error)
  }

  /** Waits for the next `<a/>` (`below` -1) or until fewer than `below` are unacknowledged. */
  const wait = (below: number, signal: AbortSignal | undefined): Promise<number> =>
    signal?.aborted
      ? Promise.reject(abortReason(signal))
      : new Promise<number>((resolve, reject) => {
          const onAbort = () => {
            waiters = waiters.filter((x) => x !== w)
            reject(abortReason(signal as AbortSignal))
          }
          const w: Waiter = {
            below,
            end: (h, error) => {
              signal?.removeEventListener('abort', onAbort)
              error ? reject(error) : resolve(h)
            },
          }
          signal?.addEventListener('abort', onAbort, { once: true })
          waiters.push(w)
        })

  /** Acknowledges up to `h`; false (and the stream failed) when `h` is beyond what was sent. */
  const applyAck = (h: number, el: Element): boolean => {
    const n = distance(acked, h)
    if (n > queue.written) {
      // §4: an ack for more than was sent ends the stream with undefined-condition and
      // <handled-count-too-high/>.
      const sent = String(advance(acked, queue.written))
      protocolError(
        `h ${h} > ${sent} sent`,
        el,
        xml('handled-count-too-high', { xmlns: NS_SM, h: String(h), 'send-count': sent }),
      )
      return false
    }
    acked = h
    if (n > 0) {
      queue.ack(n)
      const size = queue.size
      settle((w) => size < w.below, h)
      // Those still waiting ask again (for what was written since), not after requestAfter.
      if (waiters.some((w) => w.below >= 0)) ask()
    }
    return true
  }

  /**
   * The server broke the protocol: the session is dropped first (no reconnect loop into the
   * same error), then the stream ends with undefined-condition.
   */
  const protocolError = (message: string, el: Element, appCondition?: Element): SmError => {
    const error = new SmError('protocol', message, {
      condition: 'undefined-condition',
      element: el,
    })
    giveUp(error)
    ctx.fail(new StreamError('undefined-condition', message, { cause: error }), appCondition)
    return error
  }

  /** A strict `h` (§4), or the stream fails. */
  const hOf = (el: Element): number | undefined => {
    const h = parseUnsignedInt(el.attrs.h)
    if (h === undefined) protocolError(`<${el.name}/> with h ${describeValue(el.attrs.h)}`, el)
    return h
  }

  // --- Outbound --------------------------------------------------------------------------

  const checkRoom = (): void => {
    const pending = queue.size
    const bytes = queue.bytes
    if (pending < o.queueLimit && bytes < o.queueBytes) return
    void hooks.emit('sm-queue-full', {
      limit: o.queueLimit,
      byteLimit: o.queueBytes,
      pending,
      bytes,
    })
    throw new SmError('queue-full', `${pending} stanzas (${bytes} chars) unacknowledged`)
  }

  /** A stanza written on this stream, in write order: §4, it counts from now on. */
  const filed = (): void => {
    queue.written++
    afterWrite()
  }

  /** Keeps what a written stanza needs until its ack (the terminal set `data` as it wrote). */
  const track = (c: OutboundContext): void => {
    const data = c.data as string
    if (o.settle === 'acked') {
      const held = new Held(undefined, data, 0)
      queue.push(held)
      c.delivery = held.promise
    } else if (c.offset >= 0) {
      // Nobody waits on it: where it sits in the text written is all there is to keep.
      queue.pushWritten(c.batch as WrittenText, c.offset, data.length)
    } else {
      // Each stanza its own write (WebSocket): its XML alone.
      queue.push(data)
    }
    filed()
  }

  // Innermost outbound: what it sees is what is written, in write order.
  ctx.outbound(
    (c: OutboundContext, next: Next): void | Promise<void> => {
      if (c.kind !== 'stanza' || state === 'off') return next()
      const again = resends.size > 0 ? resends.get(c.element) : undefined
      if (again !== undefined) {
        resends.delete(c.element)
        const result = next()
        if (c.data !== undefined) again.compact(c.data)
        // Filed back as written on this stream, in order (it never left the queue).
        filed()
        return result
      }
      if (c.negotiation) return next()
      checkRoom()
      if (state === 'on' && conn.state === 'online') {
        // If the terminal throws, nothing is held.
        const result = next()
        track(c)
        return result
      }
      // §5: held for the resumption, sent once the session is back.
      const held = new Held(c.element, undefined, Date.now())
      queue.push(held)
      c.delivery = o.settle === 'acked' ? held.promise : held.writtenPromise
    },
    { priority: EDGE },
  )

  /** Sends a held stanza (again): the outbound middleware files it back as written. */
  const sendHeld = (held: Held, nc?: NegotiationContext): void => {
    const el = held.element
    resends.set(el, held)
    ;(nc ?? conn).send(el).then(() => held.written(), writeFailed)
  }

  // --- Inbound ---------------------------------------------------------------------------

  // Outermost inbound: <r/> and <a/> are ours whatever else is registered.
  ctx.inbound(
    (c: InboundContext, next: Next): void | Promise<void> => {
      if (c.kind === 'stanza' || c.element.attrs.xmlns !== NS_SM) return next()
      c.handled = true
      // <enabled/>, <resumed/> or <failed/> outside negotiation: unsolicited, never trusted
      // (§3, §5 answer our own requests only), ignored; so is all of it while not on.
      if (state !== 'on') return
      if (c.name === 'r') {
        // §4: answer every request at once with what we handled.
        answer.attrs.h = String(inbound)
        write(answer)
      } else if (c.name === 'a') {
        // §4: `h` acknowledges every stanza up to it.
        const h = hOf(c.element)
        if (h === undefined) return
        if (outstanding > 0) outstanding--
        if (!applyAck(h, c.element)) return
        // A server that answers several requests with one <a/> (against §4) must not leave a
        // request counted in flight for the rest of the stream: all acked, none can be.
        if (queue.written === 0) outstanding = 0
        if (outstanding === 0 && sinceRequest >= o.requestEvery) sendRequest()
        settle((w) => w.below < 0, h)
      }
    },
    { priority: -EDGE },
  )

  ctx.onHandled((c) => {
    // §4: a stanza counts once handled, whichever middleware took it.
    if (c.kind === 'stanza' && state !== 'off' && c.stream >= inboundStream) {
      inbound = advance(inbound)
    }
  })

  // --- Connection events -----------------------------------------------------------------

  /** Forgets the stream's requests (its `<a/>` will never come). */
  const streamGone = (): void => {
    ctx.clearTimeout(requestTimer)
    requestTimer = undefined
    sinceRequest = outstanding = 0
  }

  /** The server keeps a detached session `max` seconds at most (§5). */
  const armExpiry = (): void => {
    if (expiresAt === Infinity) return
    ctx.clearTimeout(expiryTimer)
    expiryTimer = ctx.setTimeout(
      () => {
        expiryTimer = undefined
        // An attempt in flight decides by itself (its resume answer, or its failure).
        if (state === 'detached' && conn.state === 'disconnected') {
          giveUp(new SmError('session-expired', `not resumed within ${max} s`))
        }
      },
      Math.max(0, expiresAt - Date.now()),
    )
  }

  const expired = (): boolean => Date.now() >= expiresAt

  /** Ends the session from here: the connection's session ends too (session-end). */
  const giveUp = (error: SmError): void => {
    if (state === 'off') return
    givenUp = error
    endSession(error)
    conn.endSession(error)
  }

  const fail = (items: Held[], error: SmError): void => {
    for (const held of items) {
      held.failed(error)
      void hooks.emit('sm-failed', { element: held.element, error })
    }
  }

  /** The session is over: every unacknowledged stanza is reported not delivered. */
  const endSession = (cause: XMPPError | undefined): void => {
    streamGone()
    ctx.clearTimeout(expiryTimer)
    expiryTimer = undefined
    state = 'off'
    id = undefined
    expiresAt = inboundStream = Infinity
    conn.resumable = false
    resends.clear()
    const error =
      cause instanceof SmError && cause.code === 'not-delivered'
        ? cause
        : new SmError('not-delivered', `session ended: ${cause?.message ?? 'closed'}`, { cause })
    settle(() => true, 0, error)
    fail(queue.drain(), error)
    const kept = failover
    failover = []
    fail(kept, error)
  }

  // Stanzas sent between <resumed/> (or <enabled/>) and the stream going online waited in the
  // queue: they go out first, in order, as soon as it is online (a synchronous hook, before
  // any other send can pass them).
  hooks.on('state', (e) => {
    if (e.state === 'online' && state === 'on') {
      for (let i = queue.written; i < queue.size; i++) sendHeld(queue.at(i))
    }
  })
  // §4: before our clean close, ask for a last ack and tell ours.
  hooks.on('closing', () => {
    if (state !== 'on') return
    if (queue.written > 0) sendRequest()
    answer.attrs.h = String(inbound)
    write(answer)
  })
  hooks.on('disconnected', ({ resumable, error }) => {
    streamGone()
    settle((w) => w.below < 0, 0, new SmError('ack-aborted', 'stream ended', { cause: error }))
    // A resumption attempt that failed before it could resume: the window keeps running.
    if (state === 'on') {
      if (!resumable || id === undefined) return // session-end follows
      state = 'detached'
      // §5: resume where the server prefers, under the same TLS and identity policy.
      const target = parseLocation(location)
      if (target) conn.nextTarget = target
      if (max !== undefined && expiresAt === Infinity) expiresAt = Date.now() + max * 1000
    }
    if (state === 'detached') armExpiry()
  })
  hooks.on('session-end', ({ error }) => {
    // Our own give-up already ended it (and a new session may be negotiated by now).
    if (error === undefined || error !== givenUp) endSession(error)
  })
  hooks.on('online', ({ resumed }) => {
    // What was resent during the resumption gets its ack request now.
    if (resumed && queue.written > 0) sendRequest()
    // A fresh session while the old one is still kept: no feature could resume or give it
    // up (the server offered neither <sm/> nor <bind/>). It is lost.
    if (!resumed && state === 'detached') giveUp(new SmError('resume-failed', NOT_OFFERED))
  })
  ctx.onDispose(() => endSession(new SmError('not-delivered', 'disposed')))

  // --- Negotiation -----------------------------------------------------------------------

  /** `<failed/>` (§3, §5): the reason is its first child's name. */
  const refused = (code: 'resume-failed' | 'enable-failed', el: Element): SmError => {
    const condition = el.getChildElements()[0]?.getName()
    return new SmError(code, `${code}${condition ? ` (${condition})` : ''}`, {
      condition,
      element: el,
    })
  }

  /** Gives up a detached session before a fresh one is bound, by the `onResumeFailed` policy. */
  const abandon = (error: SmError): void => {
    const keep: Held[] = []
    if (o.onResumeFailed === 'resend') {
      // Kept aside for the new session; iqs fail (their callers got session-end).
      const iqs: Held[] = []
      for (const held of queue.drain()) (held.element.name === 'iq' ? iqs : keep).push(held)
      fail(iqs, new SmError('not-delivered', 'an iq of a lost session', { cause: error }))
    }
    giveUp(error)
    // Set after: ending the session fails whatever is kept aside.
    failover = keep
  }

  // §5: resumption, before binding. Not 'done': binding still runs and skips itself when
  // nc.resumed is set.
  ctx.feature({
    name: 'sm-resume',
    priority: FeaturePriority.RESUME,
    applies: (features) =>
      state === 'detached' &&
      id !== undefined &&
      !expired() &&
      features.getChild('sm', NS_SM) !== undefined &&
      features.getChild('mechanisms', NS_SASL) === undefined,
    negotiate: async (_features, nc) => {
      const previd = id as string
      // h counts what was handled: let stanzas still in handlers finish first (bounded).
      await ctx.inboundSettled(o.settleTimeout)
      await nc.send(xml('resume', { xmlns: NS_SM, previd, h: String(inbound) }))
      const el = await nc.waitFor(isAnswer('resumed'), timeout(o.resumeTimeout))
      if (el.name === 'failed') {
        // §5: apply its h (when trusted: not beyond what was sent), then give the session up.
        const h = parseUnsignedInt(el.attrs.h)
        if (h !== undefined && distance(acked, h) <= queue.written) applyAck(h, el)
        abandon(refused('resume-failed', el))
        return 'continue'
      }
      // A <resumed/> for another session is not ours to trust.
      if (el.attrs.previd !== previd) {
        const error = new SmError('protocol', `resumed ${describeValue(el.attrs.previd)}`, {
          element: el,
        })
        giveUp(error)
        throw error
      }
      const h = hOf(el)
      if (h === undefined || !applyAck(h, el)) throw givenUp
      // §5: everything still unacknowledged is sent again, in order, counters kept.
      state = 'on'
      ctx.clearTimeout(expiryTimer)
      expiryTimer = undefined
      expiresAt = Infinity
      queue.written = 0
      const n = queue.size
      for (let i = 0; i < n; i++) sendHeld(queue.at(i), nc)
      resent += n
      nc.resumed = true
      void hooks.emit('sm-resumed', { resent: n })
      return 'continue'
    },
  })

  // §3: enabling, after binding.
  ctx.feature({
    name: 'sm-enable',
    priority: FeaturePriority.SM_ENABLE,
    applies: (features, nc) =>
      !nc.resumed &&
      (features.getChild('sm', NS_SM) !== undefined ||
        (features.getChild('bind', NS_BIND) !== undefined && state === 'detached')),
    negotiate: async (features, nc) => {
      if (nc.resumed) return 'continue'
      if (state === 'detached') {
        // The resumption was not tried (expired, or no <sm/> offered): the old session is lost.
        abandon(
          expired()
            ? new SmError('session-expired', 'session expired')
            : new SmError('resume-failed', NOT_OFFERED),
        )
      }
      const kept = failover
      failover = []
      if (features.getChild('sm', NS_SM) === undefined) {
        fail(kept, new SmError('not-delivered', NOT_OFFERED))
        return 'continue'
      }
      // The outbound counter starts with <enable/>, the inbound one with <enabled/> (§4).
      acked = o.counterStart >>> 0
      queue.written = 0
      await nc.send(
        xml('enable', {
          xmlns: NS_SM,
          ...(o.resume ? { resume: 'true' } : {}),
          ...(o.max === undefined ? {} : { max: String(o.max) }),
        }),
      )
      const el = await nc.waitFor(isAnswer('enabled'), timeout(o.enableTimeout))
      if (el.name === 'failed') {
        enableError = refused('enable-failed', el)
        fail(kept, enableError)
        return 'continue'
      }
      enableError = undefined
      // §3: resumable only when resume is "true" or "1" and an id is present.
      const resumable = o.resume && (el.attrs.resume === 'true' || el.attrs.resume === '1')
      id = resumable ? cappedString(el.attrs.id) : undefined
      max = parseUnsignedInt(el.attrs.max)
      location = resumable ? cappedString(el.attrs.location) : undefined
      inbound = o.counterStart >>> 0
      inboundStream = conn.stream
      expiresAt = Infinity
      state = 'on'
      conn.resumable = id !== undefined
      void hooks.emit('sm-enabled', { resumable: id !== undefined, id, max, location })
      // `onResumeFailed: 'resend'`: XEP-0203 §3 delay stamp, the old session's `from` removed.
      for (const held of kept) {
        const old = held.element
        const { from: _from, ...attrs } = old.attrs
        const copy = xml(old.name, attrs)
        copy.children = [
          ...old.children,
          xml('delay', { xmlns: NS_DELAY, stamp: new Date(held.time || Date.now()).toISOString() }),
        ]
        held.element = copy
        queue.push(held)
        sendHeld(held, nc)
      }
      resent += kept.length
      return 'continue'
    },
  })

  // --- API -------------------------------------------------------------------------------

  const notEnabled = (): Promise<never> =>
    Promise.reject(new SmError('not-enabled', 'stream management is not on'))

  /**
   * Waits until fewer than `n` are unacknowledged. `always`: ask with `<r/>` even when one on
   * its way covers everything written (allAcked(): a server may have dropped a request).
   */
  const room = (n: number, signal: AbortSignal | undefined, always: boolean): Promise<void> => {
    // Fewer than 0 (or NaN) can never be true: it would wait until the session ends.
    if (!(n >= 1) || !Number.isInteger(n)) {
      return Promise.reject(new TypeError(`whenBelow() takes a positive integer, not ${n}`))
    }
    if (queue.size < n) return Promise.resolve()
    if (state === 'off') return notEnabled()
    const waiting = wait(Math.max(0, n), signal).then(ignore)
    // An <a/> already on its way acknowledges everything written before its <r/>.
    if (!signal?.aborted) always ? sendRequest() : ask()
    return waiting
  }

  const api: SmApi = {
    get enabled() {
      return state !== 'off'
    },
    get resumable() {
      return state !== 'off' && id !== undefined
    },
    get id() {
      return id
    },
    get location() {
      return location
    },
    get pending() {
      return queue.size
    },
    get inbound() {
      return inbound
    },
    get outbound() {
      return advance(acked, queue.written)
    },
    get resent() {
      return resent
    },
    get enableError() {
      return enableError
    },

    exportState() {
      if (!api.resumable) return undefined
      const unacked: string[] = []
      for (let i = 0; i < queue.size; i++) unacked.push(queue.at(i).data)
      return {
        version: 1,
        id: id as string,
        jid: conn.jid?.toString(),
        location,
        max,
        expiresAt: expiresAt === Infinity ? undefined : expiresAt,
        inbound,
        acked,
        written: queue.written,
        unacked,
      }
    },

    importState(snapshot) {
      if (state !== 'off' || conn.state !== 'disconnected') {
        throw new SmError('not-enabled', 'importState() needs no session, disconnected')
      }
      const sid = cappedString(snapshot.id)
      const h = parseUnsignedInt(String(snapshot.inbound))
      const a = parseUnsignedInt(String(snapshot.acked))
      if (snapshot.version !== 1 || sid === undefined || h === undefined || a === undefined) {
        throw new SmError('protocol', 'not a version 1 snapshot')
      }
      const elements = parseStanzas(snapshot.unacked)
      id = sid
      location = cappedString(snapshot.location)
      max = snapshot.max
      expiresAt = snapshot.expiresAt ?? Infinity
      inbound = h
      acked = a
      inboundStream = 0
      const promises = elements.map((el) => {
        const held = new Held(el, undefined, Date.now())
        // Its failure also goes to sm-failed: a caller that drops these promises loses nothing.
        held.promise.then(undefined, ignore)
        queue.push(held)
        return held.promise
      })
      queue.written = Math.min(Math.max(0, Math.trunc(snapshot.written)), elements.length)
      if (snapshot.jid !== undefined) conn.jid = JID.parse(snapshot.jid)
      state = 'detached'
      conn.resumable = true
      const target = parseLocation(location)
      if (target) conn.nextTarget = target
      armExpiry()
      return promises
    },

    requestAck(options = {}) {
      if (state !== 'on' || conn.state !== 'online') return notEnabled()
      const waiting = wait(-1, options.signal)
      if (!options.signal?.aborted) sendRequest()
      return waiting
    },

    probe: (signal) => api.requestAck({ signal }).then(ignore),

    allAcked: (signal) => room(1, signal, true),

    whenBelow: (n, signal) => room(n, signal, false),
  }
  return api
}

/** The answer to `<enable/>` or `<resume/>`: `<enabled/>` / `<resumed/>`, or `<failed/>`. */
function isAnswer(name: string): (el: Element) => boolean {
  return (el) => (el.name === name || el.name === 'failed') && el.attrs.xmlns === NS_SM
}

function timeout(ms: number | undefined): { timeout?: number } {
  return ms === undefined ? {} : { timeout: ms }
}

function cappedString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' && value.length <= MAX_ATTRIBUTE_LENGTH
    ? value
    : undefined
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

/** A peer's value in a message: quoted, at most 40 characters. */
function describeValue(value: unknown): string {
  return value === undefined ? 'absent' : JSON.stringify(String(value).slice(0, 40))
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason
  return reason instanceof Error ? reason : new SmError('ack-aborted', 'aborted', { cause: reason })
}

/**
 * For promises whose outcome is reported elsewhere: a held stanza's failure reaches the
 * `sm-failed` hook, a failed write the stream's end.
 */
function ignore(): void {}
