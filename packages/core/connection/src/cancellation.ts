import { AbortError } from '@core/errors'

/**
 * A cheap stand-in for AbortController on hot paths. In Node, creating an AbortController
 * and adding one 'abort' listener costs about 15-20 µs; a connection attempt used several,
 * which showed in the time from connect() to online. A Cancellation is a plain object with
 * a listener array. `signal` gives a real AbortSignal, created on first use only, for APIs
 * that take one.
 */
export class Cancellation {
  #aborted = false
  #reason: unknown
  #listeners: ((reason: unknown) => void)[] | undefined
  #controller: AbortController | undefined

  get aborted(): boolean {
    return this.#aborted
  }

  /** What abort() was given; undefined until then. */
  get reason(): unknown {
    return this.#reason
  }

  /** An AbortSignal that follows this cancellation (created on first use). */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController()
      if (this.#aborted) this.#controller.abort(this.#reason)
    }
    return this.#controller.signal
  }

  /**
   * Aborts once: listeners run in the order they were added; later calls do nothing. A
   * listener that throws does not stop the others; the first error is rethrown at the end.
   */
  abort(reason: unknown = new AbortError('the operation was aborted')): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#reason = reason
    const listeners = this.#listeners
    this.#listeners = undefined
    let thrown: { error: unknown } | undefined
    if (listeners) {
      for (const fn of listeners) {
        try {
          fn(reason)
        } catch (error) {
          thrown ??= { error }
        }
      }
    }
    this.#controller?.abort(reason)
    if (thrown) throw thrown.error
  }

  /** Throws the abort reason when aborted. */
  throwIfAborted(): void {
    if (this.#aborted) throw this.#reason
  }

  /** Calls `fn` once on abort (not when already aborted: check `aborted` first). */
  onAbort(fn: (reason: unknown) => void): void {
    if (this.#aborted) return
    if (this.#listeners) this.#listeners.push(fn)
    else this.#listeners = [fn]
  }

  offAbort(fn: (reason: unknown) => void): void {
    const listeners = this.#listeners
    if (!listeners) return
    const i = listeners.indexOf(fn)
    if (i >= 0) listeners.splice(i, 1)
  }

  /** Settles like `promise`, or rejects with the reason as soon as this is aborted. */
  race<T>(promise: Promise<T>): Promise<T> {
    if (this.#aborted) {
      // The caller gets the abort reason; what `promise` does later is superseded by it (as
      // when the abort wins the race below), not an unhandled rejection.
      promise.then(undefined, supersededByAbort)
      return Promise.reject(this.#reason)
    }
    return new Promise<T>((resolve, reject) => {
      this.onAbort(reject)
      promise.then(
        (value) => {
          this.offAbort(reject)
          resolve(value)
        },
        (error: unknown) => {
          this.offAbort(reject)
          reject(error)
        },
      )
    })
  }
}

function supersededByAbort(): void {}
