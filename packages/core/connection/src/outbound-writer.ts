import type { Framing } from './framing.js'
import type { OutboundContext, WrittenText } from './middleware.js'
import type { Transport } from './transport.js'

const RESOLVED: Promise<void> = Promise.resolve()

export type RawTap = (direction: 'in' | 'out', data: string | Uint8Array) => void

const NONE: string[] = Object.freeze([]) as unknown as string[]

/**
 * Serialized elements wait here for the tick's write; send() settles once its element was
 * handed to the transport, so a sender awaiting send() goes at the peer's pace.
 */
export class OutboundWriter {
  #transport: Transport | undefined
  readonly #framing: Framing
  readonly #taps: readonly RawTap[]
  /** NONE while empty (most of an idle connection's life). */
  #buffer: string[] = NONE
  #buffered = 0
  #batch: WriteBatch | undefined
  #flushScheduled = false
  #blocked = false
  /** Made on the first batched write. */
  #flushTask: (() => void) | undefined

  constructor(transport: Transport, framing: Framing, taps: readonly RawTap[]) {
    this.#transport = transport
    this.#framing = framing
    this.#taps = taps
  }

  /** `now`: written in this turn (negotiation, one element per round trip), else this tick. */
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

  /** Writes now (headers, footers, errors), even when blocked: not lost before a close. */
  writeRaw(data: string): void {
    this.#add(data)
    this.flush(true)
  }

  /** Hands what is queued to the transport in one write, unless it asked us to wait. */
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
      // One element per message; the answer to the last says whether to wait.
      ok = true
      for (const part of parts) ok = transport.write(part) && ok
    }
    if (!ok) this.#blocked = true
    batch?.done()
  }

  drained(): void {
    this.#blocked = false
    this.flush()
  }

  /** The stream ended: what was not written never will be; those send() calls reject. */
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

/** The elements queued for one write; a promise is made only when a send() has to wait. */
class WriteBatch implements WrittenText {
  #state: 'queued' | 'written' | 'failed' = 'queued'
  #error: unknown
  #promise: Promise<void> | undefined
  #resolve: (() => void) | undefined
  #reject: ((error: unknown) => void) | undefined
  #parts: string[] | undefined
  #text: string | undefined
  /** How many parts #text was joined from, while still queued. */
  #joined = 0

  constructor(parts: string[]) {
    this.#parts = parts
  }

  /** As written, or (not written yet, or failed) what was queued. */
  get text(): string {
    const parts = this.#parts
    if (parts === undefined) return this.#text as string
    // More elements may join while queued: joined again only when they did.
    if (this.#text === undefined || this.#joined !== parts.length) {
      this.#text = parts.join('')
      this.#joined = parts.length
    }
    if (this.#state !== 'queued') this.#parts = undefined
    return this.#text
  }

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

/** What send() returns: the tracked delivery, else the write (resolved if never queued). */
export function settledOf(ctx: OutboundContext): Promise<void> {
  if (ctx.delivery) return ctx.delivery
  const batch = ctx.batch as WriteBatch | undefined
  return batch === undefined ? RESOLVED : batch.promise
}
