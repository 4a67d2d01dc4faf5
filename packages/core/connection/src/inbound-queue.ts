import type { InboundContext } from './middleware.js'

export interface InboundSteps {
  process(ctx: InboundContext): void | Promise<void>
  drained(): void
}

/** A shared empty list, never written to. */
const NONE: InboundContext[] = Object.freeze([]) as unknown as InboundContext[]

/** Inbound elements, one at a time, in order (bounded by inboundHighWaterBytes). */
export class InboundQueue {
  readonly #steps: InboundSteps
  #queue: InboundContext[] = NONE
  #busy = false
  #settleWaiters: (() => void)[] | undefined

  constructor(steps: InboundSteps) {
    this.#steps = steps
  }

  get idle(): boolean {
    return !this.#busy && this.#queue.length === 0
  }

  push(ctx: InboundContext): void {
    if (!this.#busy) this.#run(ctx)
    else if (this.#queue === NONE) this.#queue = [ctx]
    else this.#queue.push(ctx)
  }

  #run(ctx: InboundContext): void {
    const result = this.#steps.process(ctx)
    if (result === undefined) return
    this.#busy = true
    result.then(() => this.#next())
  }

  #next(): void {
    this.#busy = false
    while (!this.#busy && this.#queue.length > 0) this.#run(this.#queue.shift() as InboundContext)
    if (this.#busy) return
    this.#steps.drained()
    const waiters = this.#settleWaiters
    this.#settleWaiters = undefined
    if (waiters) for (const wake of waiters) wake()
  }

  settled(timeout: number): Promise<boolean> {
    if (this.idle) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeout)
      this.#settleWaiters ??= []
      this.#settleWaiters.push(() => {
        clearTimeout(timer)
        resolve(true)
      })
    })
  }
}

export function isPromise<T>(value: unknown): value is Promise<T> {
  return (
    typeof value === 'object' && value !== null && typeof (value as Promise<T>).then === 'function'
  )
}
