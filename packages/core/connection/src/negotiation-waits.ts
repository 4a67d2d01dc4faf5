import type { Element } from '@core/xml'
import { TimeoutError } from '@core/errors'
import type { WaitOptions } from './features.js'

interface Waiter {
  match: (element: Element) => boolean
  resolve: (element: Element) => void
  reject: (error: Error) => void
  timer: ReturnType<typeof setTimeout>
  last: boolean | ((element: Element) => boolean)
}

/**
 * The waits of stream negotiation (NegotiationContext.waitFor) and the elements that came
 * while negotiating and no wait took yet: a later wait may take them, and the rest go to the
 * inbound pipeline once online (a server resends unacknowledged stanzas right after
 * `<resumed/>`). The connection bounds them by bytes.
 */
/** An empty list shared while there is nothing (most of a connection's life): never written. */
const NONE: never[] = Object.freeze([]) as never[]

export class NegotiationWaits {
  #waiters: Waiter[] = NONE
  #pending: Element[] = NONE
  /** Told when a matched element is the last of its stream (a restart follows). */
  readonly #stream: { endStream(): void }

  constructor(stream: { endStream(): void }) {
    this.#stream = stream
  }

  get pendingCount(): number {
    return this.#pending.length
  }

  /**
   * Resolves with the first kept or next arriving element that `match` accepts. `closed`:
   * the stream is gone, so only a kept element can answer; otherwise it rejects with it.
   */
  wait(
    match: (element: Element) => boolean,
    options: WaitOptions,
    defaultTimeout: number,
    closed: Error | undefined,
  ): Promise<Element> {
    for (let i = 0; i < this.#pending.length; i++) {
      const element = this.#pending[i] as Element
      if (match(element)) {
        this.#pending.splice(i, 1)
        if (endsStream(options.last, element)) {
          this.#stream.endStream()
          this.#pending = NONE
        }
        return Promise.resolve(element)
      }
    }
    if (closed) return Promise.reject(closed)
    const timeout = options.timeout ?? defaultTimeout
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve,
        reject,
        last: options.last ?? false,
        timer: setTimeout(() => {
          const i = this.#waiters.indexOf(waiter)
          if (i >= 0) this.#waiters.splice(i, 1)
          reject(new TimeoutError(`the peer did not answer within ${timeout} ms`, 'negotiation'))
        }, timeout),
      }
      if (this.#waiters === NONE) this.#waiters = [waiter]
      else this.#waiters.push(waiter)
    })
  }

  /**
   * Offers an inbound element to the waits. True when one took it (or its matcher threw:
   * that wait fails with the error and the element is dropped).
   */
  offer(element: Element, toError: (error: unknown) => Error): boolean {
    const waiters = this.#waiters
    for (let i = 0; i < waiters.length; i++) {
      const waiter = waiters[i] as Waiter
      let matched = false
      try {
        matched = waiter.match(element)
      } catch (error) {
        waiters.splice(i, 1)
        clearTimeout(waiter.timer)
        waiter.reject(toError(error))
        return true
      }
      if (matched) {
        if (waiters.length === 1) this.#waiters = NONE
        else waiters.splice(i, 1)
        clearTimeout(waiter.timer)
        // A restart follows: nothing more from this stream may be acted upon.
        if (endsStream(waiter.last, element)) this.#stream.endStream()
        waiter.resolve(element)
        return true
      }
    }
    return false
  }

  /** Keeps an element that no wait took (yet). */
  keep(element: Element): void {
    if (this.#pending === NONE) this.#pending = [element]
    else this.#pending.push(element)
  }

  /** Hands over the kept elements and forgets them. */
  takePending(): Element[] {
    const pending = this.#pending
    this.#pending = NONE
    return pending
  }

  /** A new stream, or the end of one: kept elements are dropped unread. */
  clearPending(): void {
    this.#pending = NONE
  }

  /** Every wait fails with `error`. */
  rejectAll(error: Error): void {
    const waiters = this.#waiters
    this.#waiters = NONE
    for (const waiter of waiters) {
      clearTimeout(waiter.timer)
      waiter.reject(error)
    }
  }
}

function endsStream(
  last: boolean | ((element: Element) => boolean) | undefined,
  element: Element,
): boolean {
  return typeof last === 'function' ? last(element) : last === true
}
