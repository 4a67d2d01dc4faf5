import type { Framing } from './framing.js'
import type { OutboundContext, WrittenText } from './middleware.js'
import type { Transport } from './transport.js'

const RESOLVED: Promise<void> = Promise.resolve()

export type RawTap = (direction: 'in' | 'out', data: string | Uint8Array) => void

/**
 * The outbound buffer of one connection: serialized elements wait here for the tick's
 * write, and each send() settles once its element was handed to the transport (or fails
 * with the stream's end). The transport's backpressure holds them here, not in memory
 * beyond what senders queue: a sender that awaits send() goes at the peer's pace.
 */
const NONE: string[] = Object.freeze([]) as unknown as string[]

export class OutboundWriter {
  #transport: Transport | undefined
  readonly #framing: Framing
  readonly #taps: readonly RawTap[]
  /** NONE while empty (most of an idle connection's life): never written to. */
  #buffer: string[] = NONE
  /** The length of what #buffer holds (elements' offsets in the text of their write). */
  #buffered = 0
  /** The elements in #buffer: settles when they are handed to the transport. */
  #batch: WriteBatch | undefined
  #flushScheduled = false
  #blocked = false
  /** Made on the first batched write (an idle connection may never make one). */
  #flushTask: (() => void) | undefined

  /** Writes go to `transport`, framed by `framing`, seen by `taps`. */
  constructor(transport: Transport, framing: Framing, taps: readonly RawTap[]) {
    this.#transport = transport
    this.#framing = framing
    this.#taps = taps
  }

  /**
   * Serializes the element and queues it. `now`: written in this turn (negotiation is one
   * element per round trip, and the peer should get it before the wait for its answer is
   * set up); otherwise with the rest of this tick's elements.
   */
  queue(ctx: OutboundContext, xmlns: string, now: boolean): void {
    const data = this.#framing.element(ctx.element, xmlns)
    ctx.data = data
    ctx.queued = true
    const offset = this.#buffered
    this.#add(data)
    this.#batch ??= new WriteBatch(this.#buffer)
    ctx.batch = this.#batch
    if (this.#framing.batch) ctx.offset = offset
    if (now) this.flush()
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true
      this.#flushTask ??= () => this.flush()
      queueMicrotask(this.#flushTask)
    }
  }

  #add(data: string): void {
    if (this.#buffer === NONE) this.#buffer = [data]
    else this.#buffer.push(data)
    this.#buffered += data.length
  }

  /**
   * Writes immediately (stream headers, footers, errors), after anything queued, even when
   * the transport asked us to wait: control data must not be lost before a close.
   */
  writeRaw(data: string): void {
    this.#add(data)
    this.flush(true)
  }

  /**
   * Hands what is queued to the transport in one write, unless the transport asked us to
   * wait (then the queued elements' send() stay pending until it drains).
   */
  flush(force = false): void {
    if (!force) this.#flushScheduled = false
    const transport = this.#transport
    if (!transport || (this.#blocked && !force) || this.#buffer.length === 0) return
    const parts = this.#buffer
    this.#buffer = NONE
    this.#buffered = 0
    const batch = this.#batch
    this.#batch = undefined
    const taps = this.#taps
    if (taps.length > 0) for (const part of parts) for (const tap of taps) tap('out', part)
    let ok: boolean
    if (parts.length === 1) {
      ok = transport.write(parts[0] as string)
      batch?.wrote(parts[0] as string)
    } else if (this.#framing.batch) {
      // One write per tick: a byte stream sees batches, not one call per stanza.
      const text = parts.join('')
      ok = transport.write(text)
      batch?.wrote(text)
    } else {
      // One element per message: each part is its own write (all are accepted; the
      // transport's answer to the last says whether to wait).
      ok = true
      for (const part of parts) ok = transport.write(part) && ok
    }
    if (!ok) this.#blocked = true
    batch?.done()
  }

  /** The transport drained: write what waited. */
  drained(): void {
    this.#blocked = false
    this.flush()
  }

  /**
   * The stream ended: what was not handed to the transport never will be, and those
   * send() calls reject with `error`.
   */
  fail(error: unknown): void {
    this.#transport = undefined
    this.#buffer = NONE
    this.#buffered = 0
    this.#blocked = false
    const batch = this.#batch
    this.#batch = undefined
    batch?.fail(error)
  }
}

/**
 * The elements queued for one write. send() asks for a promise only when it has to wait:
 * an element sent while the transport is blocked, or (online) before the tick's write.
 */
class WriteBatch implements WrittenText {
  #state: 'queued' | 'written' | 'failed' = 'queued'
  #error: unknown
  #promise: Promise<void> | undefined
  #resolve: (() => void) | undefined
  #reject: ((error: unknown) => void) | undefined
  /** What is (or was) queued for this write, until it was written. */
  #parts: string[] | undefined
  #text: string | undefined
  /** How many parts #text was joined from, while still queued. */
  #joined = 0

  constructor(parts: string[]) {
    this.#parts = parts
  }

  /** The text of this write: as written, or (not written yet, or failed) what was queued. */
  get text(): string {
    const parts = this.#parts
    if (parts === undefined) return this.#text as string
    // Still queued, more elements may join this write: joined again only when they did.
    if (this.#text === undefined || this.#joined !== parts.length) {
      this.#text = parts.join('')
      this.#joined = parts.length
    }
    if (this.#state !== 'queued') this.#parts = undefined
    return this.#text
  }

  /** Its text as handed to the transport. */
  wrote(text: string): void {
    this.#text = text
    this.#parts = undefined
  }

  get promise(): Promise<void> {
    if (this.#state === 'written') return RESOLVED
    if (this.#state === 'failed') return Promise.reject(this.#error)
    this.#promise ??= new Promise<void>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    return this.#promise
  }

  done(): void {
    this.#state = 'written'
    this.#resolve?.()
  }

  fail(error: unknown): void {
    this.#state = 'failed'
    this.#error = error
    this.#reject?.(error)
  }
}

/**
 * What send() returns: the delivery a plugin tracks, else the element's write. Consumed by
 * a middleware without next() and without a delivery: that middleware decided its fate.
 */
export function settledOf(ctx: OutboundContext): Promise<void> {
  if (ctx.delivery) return ctx.delivery
  const batch = ctx.batch as WriteBatch | undefined
  return batch === undefined ? RESOLVED : batch.promise
}
