import { describe, expect, test, vi } from 'vitest'
import { Hooks } from './hooks.js'

describe('Hooks.emit', () => {
  test('a failing handler goes to the reporter; the next handlers still run', async () => {
    const reported: unknown[] = []
    const hooks = new Hooks((error) => reported.push(error))
    const ran: string[] = []
    hooks.on('online', () => {
      throw new Error('sync')
    })
    hooks.on('online', async () => {
      ran.push('second')
      throw new Error('async')
    })
    hooks.on('online', () => {
      ran.push('third')
    })
    await hooks.emit('online', { resumed: false })
    expect(ran).toEqual(['second', 'third'])
    expect(reported.map((e) => (e as Error).message)).toEqual(['sync', 'async'])
  })

  test('with onError, the emitter gets the failures instead of the reporter', async () => {
    const reported: unknown[] = []
    const hooks = new Hooks((error) => reported.push(error))
    const taken: unknown[] = []
    hooks.on('online', () => {
      throw new Error('sync')
    })
    hooks.on('online', async () => {
      throw new Error('async')
    })
    await hooks.emit('online', { resumed: true }, (error) => taken.push(error))
    expect(taken.map((e) => (e as Error).message)).toEqual(['sync', 'async'])
    expect(reported).toEqual([])
  })
})

describe('Hooks names', () => {
  test('a hook named like an Object.prototype member has no handler until one is added', async () => {
    const hooks = new Hooks(() => undefined)
    const name = 'toString' as 'online'
    expect(hooks.has(name)).toBe(false)
    expect(hooks.emit(name, { resumed: false })).toBeUndefined()
    const seen: unknown[] = []
    const off = hooks.on(name, (payload) => {
      seen.push(payload)
    })
    await hooks.emit(name, { resumed: true })
    off()
    expect(seen).toEqual([{ resumed: true }])
    expect(hooks.has(name)).toBe(false)
  })
})

describe('Hooks without a reporter', () => {
  test('a failing handler is still reported, on stderr', async () => {
    const hooks = new Hooks()
    hooks.on('online', () => {
      throw new Error('lost?')
    })
    const lines: unknown[] = []
    const spy = vi.spyOn(console, 'error').mockImplementation((line) => {
      lines.push(line)
    })
    try {
      await hooks.emit('online', { resumed: false })
    } finally {
      spy.mockRestore()
    }
    expect(lines).toEqual(['xmpp: unhandled Error: lost?'])
  })
})
