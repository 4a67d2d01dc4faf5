import type { xml } from '@core/xml'
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

/** One stanza held until the server acknowledges it (or it is reported not delivered). */
export class Held {
  /** The stanza as it was written (or will be, once there is a stream). */
  element: Element
  /** When send() took it (ms since the epoch), for a later XEP-0203 delay stamp. */
  readonly time: number
  readonly #resolve: () => void
  readonly #reject: (error: unknown) => void
  readonly promise: Promise<void>

  constructor(element: Element, time: number) {
    this.element = element
    this.time = time
    // One shared executor rather than a closure per stanza (one Held per stanza sent).
    this.promise = new Promise<void>(capture)
    this.#resolve = captured.resolve
    this.#reject = captured.reject
  }

  acked(): void {
    this.#resolve()
  }

  failed(error: unknown): void {
    this.#reject(error)
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
