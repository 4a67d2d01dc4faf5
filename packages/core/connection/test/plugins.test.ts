import { describe, expect, expectTypeOf, test } from 'vitest'
import { createConnection, definePlugin } from '../src/index.js'
import { PluginError } from '@core/errors'
import { xml } from '@core/xml'
import { SHORT, inbox, newPeer, online, tick } from './helpers.js'

const base = definePlugin({
  name: 'base',
  options: { greeting: 'hello' },
  setup: (_ctx, options) => ({ greet: (who: string) => `${options.greeting} ${who}` }),
})
const dependent = definePlugin({
  name: 'dependent',
  dependencies: [base],
  setup: (ctx) => ({ shout: (who: string) => ctx.get(base).greet(who).toUpperCase() }),
})

describe('plugin registry', () => {
  test('plugin APIs are typed from the list passed', () => {
    const peer = newPeer()
    const conn = createConnection({
      transport: peer.transport,
      domain: 'example.com',
      plugins: [base, dependent],
    })
    expect(conn.plugins.dependent.shout('bob')).toBe('HELLO BOB')
    expectTypeOf(conn.plugins.base.greet).toEqualTypeOf<(who: string) => string>()
    // @ts-expect-error: inbox was not passed
    expect(conn.plugins.inbox).toBeUndefined()
  })

  test('options are set with with()', () => {
    const peer = newPeer()
    const conn = createConnection({
      transport: peer.transport,
      domain: 'example.com',
      plugins: [base.with({ greeting: 'hi' })],
    })
    expect(conn.plugins.base.greet('ann')).toBe('hi ann')
  })

  test('a missing dependency fails at registration, naming it', () => {
    const peer = newPeer()
    let error: unknown
    try {
      createConnection({ transport: peer.transport, domain: 'example.com', plugins: [dependent] })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(PluginError)
    expect(error).toMatchObject({ code: 'missing-dependency', plugin: 'dependent' })
    expect((error as Error).message).toContain('"base"')
  })

  test('a duplicate plugin is refused', () => {
    const peer = newPeer()
    expect(() =>
      createConnection({ transport: peer.transport, domain: 'example.com', plugins: [base, base] }),
    ).toThrow(expect.objectContaining({ code: 'duplicate-plugin' }))
  })

  test('use() adds plugins (typed) before connect and fails after, saying what to do', async () => {
    const peer = newPeer()
    const conn = createConnection({
      transport: peer.transport,
      domain: 'example.com',
      timeouts: SHORT,
    }).use(base)
    expectTypeOf(conn.plugins.base.greet).toBeFunction()
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '' })
    await connecting
    let error: unknown
    try {
      conn.use(inbox)
    } catch (e) {
      error = e
    }
    expect(error).toMatchObject({ code: 'registry-frozen', plugin: 'inbox' })
    expect((error as Error).message).toContain('createConnection({ plugins')
  })

  test('async setup is awaited before connecting; a setup that never ends times out', async () => {
    const asyncPlugin = definePlugin({
      name: 'later',
      setup: async () => {
        await tick(5)
        return { value: 42 }
      },
    })
    const { conn } = await online([asyncPlugin])
    expect(conn.plugins.later.value).toBe(42)

    const stuck = definePlugin({ name: 'stuck', setup: () => new Promise<never>(() => undefined) })
    const peer = newPeer()
    const c2 = createConnection({
      transport: peer.transport,
      domain: 'example.com',
      timeouts: { ...SHORT, pluginSetup: 30 },
      plugins: [stuck],
    })
    await expect(c2.connect()).rejects.toMatchObject({ code: 'setup-timeout', plugin: 'stuck' })
  })

  test('teardown runs in reverse registration order and stops plugin timers', async () => {
    const order: string[] = []
    let fired = false
    const make = <const N extends string>(name: N) =>
      definePlugin({
        name,
        setup(ctx) {
          ctx.onDispose(() => {
            order.push(name)
          })
          ctx.setTimeout(() => {
            fired = true
          }, 300)
          return { aborted: () => ctx.signal.aborted }
        },
      })
    const { conn } = await online([make('first'), make('second'), make('third')])
    await conn.dispose()
    expect(order).toEqual(['third', 'second', 'first'])
    expect(conn.plugins.first.aborted()).toBe(true)
    await tick(350)
    expect(fired).toBe(false)
  })

  test('calling next() twice is an error naming the plugin', async () => {
    const twice = definePlugin({
      name: 'twice',
      setup(ctx) {
        ctx.outbound(async (_c, next) => {
          await next()
          await next()
        })
      },
    })
    const { conn } = await online([twice])
    await expect(conn.send(xml('message'))).rejects.toMatchObject({
      code: 'next-called-twice',
      plugin: 'twice',
    })
  })

  test('next() called twice is blamed on the layer that did it, not on a later one', async () => {
    const seen: string[] = []
    const first = definePlugin({
      name: 'first',
      setup(ctx) {
        ctx.outbound(async (_c, next) => {
          await next()
          await next()
        })
      },
    })
    const second = definePlugin({
      name: 'second',
      setup(ctx) {
        ctx.outbound((c, next) => {
          seen.push(c.element.name)
          return next()
        })
      },
    })
    const { conn, peer } = await online([first, second])
    const before = peer.written.length
    await expect(conn.send(xml('message'))).rejects.toMatchObject({
      code: 'next-called-twice',
      plugin: 'first',
    })
    expect(seen).toEqual(['message'])
    expect(peer.written.slice(before).join('')).toContain('<message')
  })
})
