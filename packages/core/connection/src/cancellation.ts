import { AbortError } from '@core/errors'

/**
 * A cheap stand-in for AbortController on hot paths: creating one and adding an 'abort'
 * listener costs 12-21 µs in Node, several per connection attempt. A plain object with a
 * listener list; `signal` makes a real AbortSignal on first use, for APIs that take one.
 */
export class Cancellation {
  /** Set by abort(); `reason` is what it was given. */
  #aborted: { reason: unknown } | undefined
  #listeners: ((reason: unknown) => void)[] | undefined
  #controller: AbortController | undefined

  get aborted(): boolean {
    return this.#aborted !== undefined
  }

  /** What abort() was given; undefined until then. */
  get reason(): unknown {
    return this.#aborted?.reason
  }

  /** An AbortSignal that follows this cancellation (created on first use). */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController()
      if (this.#aborted) this.#controller.abort(this.#aborted.reason)
    }
    return this.#controller.signal
  }

  /**
   * Aborts once: listeners run in the order they were added; later calls do nothing. A
   * listener that throws does not stop the others; the first error is rethrown at the end.
   */
  abort(reason: unknown = new AbortError('the operation was aborted')): void {
    if (this.#aborted) return
    this.#aborted = { reason }
    const listeners = this.#listeners ?? []
    this.#listeners = undefined
    let thrown: { error: unknown } | undefined
    for (const fn of listeners) {
      try {
        fn(reason)
      } catch (error) {
        thrown ??= { error }
      }
    }
    this.#controller?.abort(reason)
    if (thrown) throw thrown.error
  }

  /** Throws the abort reason when aborted. */
  throwIfAborted(): void {
    if (this.#aborted) throw this.#aborted.reason
  }

  /** Calls `fn` once on abort (not when already aborted: check `aborted` first). */
  onAbort(fn: (reason: unknown) => void): void {
    if (this.#aborted) return
    this.#listeners ??= []
    this.#listeners.push(fn)
  }

  offAbort(fn: (reason: unknown) => void): void {
    const i = this.#listeners?.indexOf(fn) ?? -1
    if (i >= 0) this.#listeners?.splice(i, 1)
  }

  /** Settles like `promise`, or rejects with the reason as soon as this is aborted. */
  race<T>(promise: Promise<T>): Promise<T> {
    if (this.#aborted) {
      // The caller gets the reason; what `promise` does later is superseded by it (as when
      // the abort wins the race below), not an unhandled rejection.
      promise.then(undefined, supersededByAbort)
      return Promise.reject(this.#aborted.reason)
    }
    return new Promise<T>((resolve, reject) => {
      this.onAbort(reject)
      const settled = () => this.offAbort(reject)
      promise.then(resolve, reject).finally(settled)
    })
  }
}

function supersededByAbort(): void {}
