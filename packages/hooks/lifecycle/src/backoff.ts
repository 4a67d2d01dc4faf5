/** How long to wait between reconnection attempts. */
export interface BackoffOptions {
  /** The first delay that is not prompt, in ms. Default 1000. */
  initial: number
  /** Each further delay is the previous one times this. Default 2. */
  factor: number
  /** No delay exceeds this, in ms (before jitter). Default 60 000. */
  max: number
  /**
   * Up to this fraction of each delay is taken off at random, so that clients dropped
   * together do not come back together. 0 to 1; default 0.5.
   */
  jitter: number
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({
  initial: 1000,
  factor: 2,
  max: 60_000,
  jitter: 0.5,
})

/**
 * The delay before the `step`-th delayed retry (0 for the first): exponential, capped at
 * `max`, then shortened by a random part of up to `jitter` of it. `random` returns a number
 * in [0, 1), as Math.random does.
 */
export function backoffDelay(
  step: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const exponential = options.initial * options.factor ** Math.max(0, step)
  const capped = Math.min(options.max, Number.isFinite(exponential) ? exponential : options.max)
  const jitter = Math.min(1, Math.max(0, options.jitter))
  return Math.round(capped * (1 - jitter * random()))
}
