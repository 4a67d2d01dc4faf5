import type { WrittenText } from '@core/connection'
import { serialize, type xml } from '@core/xml'
import { parseStanzas } from './snapshot.js'

type Element = ReturnType<typeof xml>

const RESOLVED: Promise<void> = Promise.resolve()

/**
 * One stanza held until the server acknowledges it (or it is reported not delivered), when
 * the XML written alone is not enough: someone asked for its promises, it waits for a stream
 * (held for a resumption), or it is being resent, reported or exported. Its promises exist
 * only when asked for, so a failure nobody awaits is not an unhandled rejection (it goes to
 * the `sm-failed` hook).
 */
export class Held {
  /** When send() took it (ms since the epoch; 0: not known), for an XEP-0203 delay stamp. */
  readonly time: number
  /** The length of its XML, counted against the queue's byte bound (fixed once queued). */
  readonly size: number
  #element: Element | undefined
  /** The stanza as written: far less heap than its element tree. */
  #data: string | undefined
  /** undefined while pending; then 'acked', or the failure. */
  #outcome: 'acked' | { error: unknown } | undefined
  #acked: Deferred | undefined
  /** Settles once the stanza is written on a stream (for a send() held for a resumption). */
  #written: Deferred | undefined
  #wasWritten = false

  /** Either the element (not written yet) or the XML written; `size` from whichever is given. */
  constructor(element: Element | undefined, data: string | undefined, time: number) {
    this.#element = element
    this.#data = data
    this.time = time
    this.size = data?.length ?? serialize(element as Element).length
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

  /** The XML of the stanza: as written, or serialized from its element. */
  get data(): string {
    return this.#data ?? serialize(this.#element as Element)
  }

  /** Keeps the stanza as the XML that was written instead of its element tree. */
  compact(data: string): void {
    this.#data = flatten(data)
    this.#element = undefined
  }

  /** Settles when the server acknowledged the stanza, or rejects when it is not delivered. */
  get promise(): Promise<void> {
    const outcome = this.#outcome
    if (outcome === 'acked') return RESOLVED
    if (outcome) return Promise.reject(outcome.error)
    this.#acked ??= deferred()
    return this.#acked.promise
  }

  /** Settles when the stanza was written (or acknowledged), or rejects when not delivered. */
  get writtenPromise(): Promise<void> {
    if (this.#wasWritten || this.#outcome === 'acked') return RESOLVED
    if (this.#outcome) return Promise.reject(this.#outcome.error)
    this.#written ??= deferred()
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

interface Deferred {
  promise: Promise<void>
  resolve: () => void
  reject: (error: unknown) => void
}

/** A promise with its resolvers (made only for a stanza someone waits on). */
function deferred(): Deferred {
  let resolve!: () => void
  let reject!: (error: unknown) => void
  const promise = new Promise<void>((y, n) => {
    resolve = y
    reject = n
  })
  return { promise, resolve, reject }
}

/**
 * The serializer builds its output by concatenation: V8 keeps such a string as a tree of
 * pieces until something reads it by index. A stanza kept until its ack would keep that whole
 * tree alive through garbage collections; reading one character makes V8 flatten it into one
 * piece (measured in apps/bench sm.mjs: the per-stanza cost of stream management).
 */
function flatten(data: string): string {
  data.charCodeAt(0)
  return data
}

/**
 * A queue entry: the text of the write the stanza was part of (the common case: its place is
 * in the queue's offsets and lengths, no string per stanza), its XML alone (where each
 * stanza is its own write), or a Held.
 */
type Entry = WrittenText | string | Held

/**
 * The stanzas not yet acknowledged, oldest first: a ring buffer, so that acknowledging k
 * stanzas costs O(k) whatever the backlog (an `Array.shift()` per ack costs O(backlog) each).
 * The first `written` entries went out on the current stream; the rest wait for one. A stanza
 * written online with nobody waiting on it is kept as where it sits in the text of its write
 * (the write's text lives until its last stanza is acknowledged); it becomes a Held when it
 * is resent, reported or exported.
 */
export class AckQueue {
  #items: (Entry | undefined)[]
  /** Per slot: where a stanza starts in the text of its write. */
  #offsets: Uint32Array
  /** Per slot: the length of its XML (fixed once queued), for the byte bound. */
  #lengths: Uint32Array
  #head = 0
  #size = 0
  /** The length of the XML held, in characters (bytes for ASCII), for the byte bound. */
  bytes = 0
  /** How many of the oldest entries were written on the current stream. */
  written = 0

  constructor(initialCapacity = 16) {
    this.#items = new Array(initialCapacity)
    this.#offsets = new Uint32Array(initialCapacity)
    this.#lengths = new Uint32Array(initialCapacity)
  }

  get size(): number {
    return this.#size
  }

  /** Queues a Held, or the XML of a stanza written online with nobody waiting on it. */
  push(entry: string | Held): void {
    if (typeof entry === 'string') this.#push(entry, 0, flatten(entry).length)
    else this.#push(entry, 0, entry.size)
  }

  /** Queues a stanza written online with nobody waiting on it: `length` at `offset` of `text`. */
  pushWritten(text: WrittenText, offset: number, length: number): void {
    this.#push(text, offset, length)
  }

  #push(entry: Entry, offset: number, length: number): void {
    if (this.#size === this.#items.length) this.#grow()
    const slot = (this.#head + this.#size++) % this.#items.length
    this.#items[slot] = entry
    this.#offsets[slot] = offset
    this.#lengths[slot] = length
    this.bytes += length
  }

  /** The entry at `index` from the oldest, as a Held (kept as one from now on). */
  at(index: number): Held {
    const slot = (this.#head + index) % this.#items.length
    const entry = this.#items[slot] as Entry
    if (entry instanceof Held) return entry
    const offset = this.#offsets[slot] as number
    const data =
      typeof entry === 'string'
        ? entry
        : entry.text.slice(offset, offset + (this.#lengths[slot] as number))
    const held = new Held(undefined, data, 0)
    this.#items[slot] = held
    return held
  }

  /** Acknowledges the `n` oldest entries: O(n). */
  ack(n: number): void {
    const items = this.#items
    const lengths = this.#lengths
    for (let i = 0; i < n && this.#size > 0; i++, this.#size--) {
      const head = this.#head
      const entry = items[head]
      this.bytes -= lengths[head] as number
      if (entry instanceof Held) entry.acked()
      items[head] = undefined
      this.#head = (head + 1) % items.length
      if (this.written > 0) this.written--
    }
  }

  /** Takes every entry out, oldest first, as Held (read back from their XML when asked). */
  drain(): Held[] {
    const out: Held[] = []
    for (let i = 0; i < this.#size; i++) out.push(this.at(i))
    this.#items.fill(undefined)
    this.#size = this.bytes = this.written = 0
    return out
  }

  #grow(): void {
    const old = this.#items
    const capacity = Math.max(16, old.length * 2)
    const next = new Array<Entry | undefined>(capacity)
    const offsets = new Uint32Array(capacity)
    const lengths = new Uint32Array(capacity)
    for (let i = 0; i < this.#size; i++) {
      const slot = (this.#head + i) % old.length
      next[i] = old[slot]
      offsets[i] = this.#offsets[slot] as number
      lengths[i] = this.#lengths[slot] as number
    }
    this.#items = next
    this.#offsets = offsets
    this.#lengths = lengths
    this.#head = 0
  }
}
