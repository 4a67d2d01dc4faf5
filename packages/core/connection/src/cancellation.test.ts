import { describe, expect, it } from 'vitest'
import { Cancellation } from './cancellation.js'
import { AbortError } from '@core/errors'

describe('Cancellation', () => {
  it('calls its listeners once, in order, with the reason; later aborts do nothing', () => {
    const c = new Cancellation()
    const seen: unknown[] = []
    c.onAbort((r) => seen.push(['a', r]))
    c.onAbort((r) => seen.push(['b', r]))
    const reason = new Error('stop')
    c.abort(reason)
    c.abort(new Error('again'))
    expect(seen).toEqual([
      ['a', reason],
      ['b', reason],
    ])
    expect(c.aborted).toBe(true)
    expect(c.reason).toBe(reason)
    expect(() => c.throwIfAborted()).toThrow(reason)
  })

  it('does not call a listener that was removed', () => {
    const c = new Cancellation()
    const seen: string[] = []
    const a = () => seen.push('a')
    c.onAbort(a)
    c.onAbort(() => seen.push('b'))
    c.offAbort(a)
    c.abort('why')
    expect(seen).toEqual(['b'])
  })

  it('gives an AbortSignal that follows it, before or after the abort', () => {
    const before = new Cancellation()
    const signal = before.signal
    expect(signal.aborted).toBe(false)
    before.abort('late')
    expect(signal.aborted).toBe(true)
    expect(signal.reason).toBe('late')

    const after = new Cancellation()
    after.abort('early')
    expect(after.signal.aborted).toBe(true)
    expect(after.signal.reason).toBe('early')
  })

  it('race() settles like the promise, or rejects with the reason on abort', async () => {
    const c = new Cancellation()
    await expect(c.race(Promise.resolve(7))).resolves.toBe(7)
    await expect(c.race(Promise.reject(new Error('own')))).rejects.toThrow('own')
    const pending = c.race(new Promise<number>(() => undefined))
    c.abort(new Error('gave up'))
    await expect(pending).rejects.toThrow('gave up')
    // Already aborted: rejects at once, and the loser's rejection is not unhandled.
    await expect(c.race(Promise.reject(new Error('ignored')))).rejects.toThrow('gave up')
  })
})

describe('Cancellation edge cases', () => {
  it('a throwing listener does not stop the others nor the signal; its error is rethrown', () => {
    const c = new Cancellation()
    const signal = c.signal
    const seen: string[] = []
    c.onAbort(() => {
      throw new Error('listener failed')
    })
    c.onAbort(() => seen.push('second'))
    expect(() => c.abort('why')).toThrow('listener failed')
    expect(seen).toEqual(['second'])
    expect(signal.aborted).toBe(true)
    expect(c.aborted).toBe(true)
  })

  it('abort() without a reason gives a typed AbortError', () => {
    const c = new Cancellation()
    c.abort()
    expect(c.reason).toBeInstanceOf(AbortError)
    expect(c.signal.reason).toBe(c.reason)
  })
})
