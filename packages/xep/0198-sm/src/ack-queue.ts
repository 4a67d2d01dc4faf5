import type { xml } from '@core/xml'
import { parseStanzas } from './snapshot.js'

type Element = ReturnType<typeof xml>

/** The resolvers of the promise being made (see Held's constructor). */
const captured: { resolve: () => void; reject: (error: unknown) => void } = {
  resolve: () => undefined,
  reject: () => undefined,
}

function capture(resolve: () => void, reject: (error: unknown) => void): void {
  captured.resolve = resolve
  captured.reject = reject
}

const RESOLVED: Promise<void> = Promise.resolve()

/**
 * One stanza held until the server acknowledges it (or it is reported not delivered). Its
 * promises exist only when someone asks for them: with `settle: 'written'` nobody does for a
 * stanza sent online, so there is no promise per stanza, and a failure nobody awaits is not
 * an unhandled rejection (it goes to the `sm-failed` hook).
 */
export class Held {
  /** When send() took it (ms since the epoch), for a later XEP-0203 delay stamp. */
  readonly time: number
  #element: Element | undefined
  /** The stanza as written, once compact(): far less heap than its element tree. */
  #data: string | undefined
  /** undefined while pending; then 'acked', or the failure. */
  #outcome: 'acked' | { error: unknown } | undefined
  #acked: Deferred | undefined
  /** Settles once the stanza is written on a stream (for a send() held for a resumption). */
  #written: Deferred | undefined
  #wasWritten = false

  constructor(element: Element, time: number) {
    this.#element = element
    this.time = time
  }

  /** The stanza as it was written (or will be, once there is a stream). */
  get element(): Element {
    // Read back from the XML that was written: only for a resend, a report or an export.
    this.#element ??= parseStanzas([this.#data as string])[0] as Element
    return this.#element
  }

  set element(element: Element) {
    this.#element = element
    this.#data = undefined
  }

  /**
   * Keeps the stanza as the XML that was written instead of its element tree. Thousands of
   * stanzas may wait for their acks: as trees they outlive V8's young generation and make
   * every collection copy them; as one string each they cost a fraction of that.
   */
  compact(data: string): void {
    this.#data = data
    this.#element = undefined
  }

  /** Settles when the server acknowledged the stanza, or rejects when it is not delivered. */
  get promise(): Promise<void> {
    const outcome = this.#outcome
    if (outcome === 'acked') return RESOLVED
    if (outcome) return Promise.reject(outcome.error)
    this.#acked ??= new Deferred()
    return this.#acked.promise
  }

  /** Settles when the stanza was written (or acknowledged), or rejects when not delivered. */
  get writtenPromise(): Promise<void> {
    if (this.#wasWritten || this.#outcome === 'acked') return RESOLVED
    if (this.#outcome) return Promise.reject(this.#outcome.error)
    this.#written ??= new Deferred()
    return this.#written.promise
  }

  written(): void {
    this.#wasWritten = true
    this.#written?.resolve()
  }

  acked(): void {
    if (this.#outcome) return
    this.#outcome = 'acked'
    this.#acked?.resolve()
    this.#written?.resolve()
  }

  failed(error: unknown): void {
    if (this.#outcome) return
    this.#outcome = { error }
    this.#acked?.reject(error)
    if (!this.#wasWritten) this.#written?.reject(error)
  }
}

/** A promise with its resolvers; one shared executor rather than a closure per instance. */
class Deferred {
  readonly promise: Promise<void>
  readonly resolve: () => void
  readonly reject: (error: unknown) => void
  constructor() {
    this.promise = new Promise<void>(capture)
    this.resolve = captured.resolve
    this.reject = captured.reject
  }
}

/**
 * The stanzas not yet acknowledged, oldest first: a ring buffer, so that acknowledging k
 * stanzas costs O(k) whatever the backlog (an `Array.shift()` per ack costs O(backlog) each).
 * The first `written` entries went out on the current stream; the rest wait for one.
 */
export class AckQueue {
  #items: (Held | undefined)[]
  #head = 0
  #size = 0
  /** How many of the oldest entries were written on the current stream. */
  written = 0

  constructor(initialCapacity = 16) {
    this.#items = new Array(initialCapacity)
  }

  get size(): number {
    return this.#size
  }

  /** Entries not written yet (held while there was no stream). */
  get unwritten(): number {
    return this.#size - this.written
  }

  push(item: Held): void {
    if (this.#size === this.#items.length) this.#grow()
    this.#items[(this.#head + this.#size) % this.#items.length] = item
    this.#size++
  }

  /** The entry at `index` from the oldest. */
  at(index: number): Held | undefined {
    if (index < 0 || index >= this.#size) return undefined
    return this.#items[(this.#head + index) % this.#items.length]
  }

  /** Takes the `n` oldest entries out, oldest first, into `out`. O(n). */
  shift(n: number, out: Held[]): void {
    const items = this.#items
    const cap = items.length
    for (let i = 0; i < n && this.#size > 0; i++) {
      out.push(items[this.#head] as Held)
      items[this.#head] = undefined
      this.#head = (this.#head + 1) % cap
      this.#size--
      if (this.written > 0) this.written--
    }
    if (this.#size === 0) this.#head = 0
  }

  /** Takes every entry out, oldest first. */
  drain(): Held[] {
    const out: Held[] = []
    this.shift(this.#size, out)
    this.written = 0
    return out
  }

  #grow(): void {
    const old = this.#items
    const next = new Array<Held | undefined>(Math.max(16, old.length * 2))
    for (let i = 0; i < this.#size; i++) next[i] = old[(this.#head + i) % old.length]
    this.#items = next
    this.#head = 0
  }
}
