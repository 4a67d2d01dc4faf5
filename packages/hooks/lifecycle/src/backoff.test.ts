import { describe, expect, test } from 'vitest'
import { backoffDelay } from './backoff.js'

const options = { initial: 1000, factor: 2, max: 60_000, jitter: 0.5 }

describe('backoffDelay', () => {
  test('exponential without jitter (random 0), capped at max', () => {
    const delays = Array.from({ length: 9 }, (_, step) => backoffDelay(step, options, () => 0))
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000])
  })

  test('jitter takes at most its fraction off', () => {
    expect(backoffDelay(2, options, () => 0.999999)).toBe(2000)
    for (let i = 0; i < 1000; i++) {
      const d = backoffDelay(3, options)
      expect(d).toBeGreaterThanOrEqual(4000)
      expect(d).toBeLessThanOrEqual(8000)
    }
  })

  test('a huge step stays at max; jitter outside 0..1 is clamped', () => {
    expect(backoffDelay(5000, options, () => 0)).toBe(60_000)
    expect(backoffDelay(0, { ...options, jitter: 7 }, () => 0.5)).toBe(500)
    expect(backoffDelay(0, { ...options, jitter: -1 }, () => 0.5)).toBe(1000)
  })
})
