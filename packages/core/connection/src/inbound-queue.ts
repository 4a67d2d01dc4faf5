import type { InboundContext } from './middleware.js'

export interface InboundSteps {
  /** Runs the element through the checks and the pipeline; a promise while it is handled. */
  handle(ctx: InboundContext): void | Promise<void>
  /** The handling threw or rejected. */
  failed(ctx: InboundContext, error: unknown): void
  /** After the handling settled, whatever its outcome: exactly once per element. */
  complete(ctx: InboundContext): void
  /** The queue emptied after async handling. */
  drained(): void
}

/**
 * Inbound elements are handled one at a time, in order: while one's handling is async, the
 * next wait here. Every element is completed exactly once, also when its handling ends
 * after its stream did (stream management counts it for the session it came from).
 */
const NONE: InboundContext[] = Object.freeze([]) as unknown as InboundContext[]

export class InboundQueue {
  readonly #steps: InboundSteps
  /** NONE until a handler is first busy when an element arrives: never written to. */
  #queue: InboundContext[] = NONE
  #busy = false
  /** Waiting for in-flight handling to settle (PluginContext.inboundSettled). */
  #settleWaiters: (() => void)[] | undefined

  constructor(steps: InboundSteps) {
    this.#steps = steps
  }

  /** Elements handled or waiting. */
  get idle(): boolean {
    return !this.#busy && this.#queue.length === 0
  }

  push(ctx: InboundContext): void {
    if (this.#busy) {
      // Bounded by the input bytes read meanwhile (see the connection's inboundHighWaterBytes).
      if (this.#queue === NONE) this.#queue = [ctx]
      else this.#queue.push(ctx)
      return
    }
    this.#run(ctx)
  }

  #run(ctx: InboundContext): void {
    const steps = this.#steps
    let result: void | Promise<void>
    try {
      result = steps.handle(ctx)
    } catch (error) {
      steps.failed(ctx, error)
      steps.complete(ctx)
      return
    }
    if (result !== undefined && isPromise(result)) {
      this.#busy = true
      result.then(
        () => this.#completeAsync(ctx),
        (error: unknown) => {
          steps.failed(ctx, error)
          this.#completeAsync(ctx)
        },
      )
      return
    }
    steps.complete(ctx)
  }

  #completeAsync(ctx: InboundContext): void {
    this.#steps.complete(ctx)
    this.#busy = false
    while (!this.#busy && this.#queue.length > 0) this.#run(this.#queue.shift() as InboundContext)
    if (this.#busy) return
    this.#steps.drained()
    const waiters = this.#settleWaiters
    if (waiters) {
      this.#settleWaiters = undefined
      for (const wake of waiters) wake()
    }
  }

  /** Resolves true once no element is being handled or queued, false on timeout. */
  settled(timeout: number): Promise<boolean> {
    if (this.idle) return Promise.resolve(true)
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer)
        resolve(true)
      }
      const timer = setTimeout(() => {
        const list = this.#settleWaiters
        const i = list?.indexOf(wake) ?? -1
        if (i >= 0) list?.splice(i, 1)
        resolve(false)
      }, timeout)
      this.#settleWaiters ??= []
      this.#settleWaiters.push(wake)
    })
  }
}

export function isPromise<T>(value: unknown): value is Promise<T> {
  return (
    typeof value === 'object' && value !== null && typeof (value as Promise<T>).then === 'function'
  )
}
