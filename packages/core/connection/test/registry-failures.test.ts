// The registry's failure paths, and inbound checks that must not depend on which routes exist.
import { describe, expect, test } from 'vitest'
import { createConnection, definePlugin, type HookMap } from '../src/index.js'
import { PluginError } from '@core/errors'
import { xml } from '@core/xml'
import { SHORT, inbox, newPeer, online, tick, withPeer } from './helpers.js'

/** A plugin that records its setup and teardown in `log`. */
function tracked(name: string, log: string[], deps: ReturnType<typeof definePlugin>[] = []) {
  return definePlugin({
    name,
    dependencies: deps,
    setup(ctx) {
      log.push(`setup ${name}`)
      ctx.onDispose(() => {
        log.push(`teardown ${name}`)
      })
      return { name }
    },
  })
}

describe('registry failure paths', () => {
  test("a later plugin's setup throwing tears the earlier ones down, in reverse order", async () => {
    const log: string[] = []
    const failing = definePlugin({
      name: 'failing',
      setup() {
        throw new Error('boom')
      },
    })
    const peer = newPeer()
    expect(() =>
      createConnection({
        transport: peer.transport,
        domain: 'example.com',
        plugins: [tracked('a', log), tracked('b', log), failing],
      }),
    ).toThrow(expect.objectContaining({ code: 'setup-failed', plugin: 'failing' }))
    await tick()
    expect(log).toEqual(['setup a', 'setup b', 'teardown b', 'teardown a'])
  })

  test('a plugin whose setup throws leaves no middleware, hooks or disposers behind', async () => {
    const seen: string[] = []
    const half = definePlugin({
      name: 'half',
      setup(ctx) {
        ctx.inbound((c, next) => {
          seen.push(`inbound ${c.name}`)
          return next()
        })
        ctx.outbound((c, next) => {
          seen.push(`outbound ${c.element.name}`)
          return next()
        })
        ctx.hooks.on('online', () => {
          seen.push('online hook')
        })
        ctx.onDispose(() => {
          seen.push('disposer')
        })
        throw new Error('half-way')
      },
    })
    const { peer, conn } = withPeer()
    expect(() => conn.use(half)).toThrow(expect.objectContaining({ code: 'setup-failed' }))
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '' })
    await connecting
    await conn.send(xml('message', { to: 'a@example.com' }))
    peer.send("<message from='a@example.com'/>")
    await tick()
    await conn.dispose()
    expect(seen).toEqual([])
  })

  test("a failed setup's timers never fire and its signal aborts with the failure", async () => {
    const seen: string[] = []
    const failing = definePlugin({
      name: 'failing',
      setup(ctx) {
        ctx.setTimeout(() => seen.push('timer fired'), 10)
        ctx.signal.addEventListener('abort', () => {
          seen.push(`aborted: ${(ctx.signal.reason as PluginError).code}`)
        })
        throw new Error('half-way')
      },
    })
    let later: AbortSignal | undefined
    const next = definePlugin({
      name: 'next',
      setup(ctx) {
        later = ctx.signal
      },
    })
    const { conn } = withPeer()
    expect(() => conn.use(failing)).toThrow(expect.objectContaining({ code: 'setup-failed' }))
    conn.use(next)
    await tick(30)
    expect(seen).toEqual(['aborted: setup-failed'])
    // The plugin registered in its place gets a signal of its own.
    expect(later?.aborted).toBe(false)
    await conn.dispose()
    expect(later?.aborted).toBe(true)
  })

  test("a dependency's async setup completes before its dependent's setup runs", async () => {
    const slow = definePlugin({
      name: 'slow',
      async setup() {
        await tick(20)
        return { value: 42 }
      },
    })
    let seenByDependent: unknown = 'not run'
    const dependent = definePlugin({
      name: 'dependent',
      dependencies: [slow],
      setup(ctx) {
        seenByDependent = ctx.get(slow)?.value
        return {}
      },
    })
    const { peer, conn } = withPeer({ plugins: [slow, dependent] })
    expect(seenByDependent).toBe('not run')
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '' })
    await connecting
    expect(seenByDependent).toBe(42)
  })

  test('an async setup failure fails connect() and tears every plugin down', async () => {
    const log: string[] = []
    const broken = definePlugin({
      name: 'broken',
      async setup() {
        await tick(5)
        throw new Error('no database')
      },
    })
    const { peer, conn } = withPeer({ plugins: [tracked('a', log), broken] })
    await expect(conn.connect()).rejects.toMatchObject({ code: 'setup-failed', plugin: 'broken' })
    expect(log).toEqual(['setup a', 'teardown a'])
    expect(peer.targets).toHaveLength(0)
    await expect(conn.connect()).rejects.toMatchObject({ code: 'disposed' })
  })

  test('teardown follows registration order, not the order disposers and signals were taken', async () => {
    const log: string[] = []
    const first = definePlugin({
      name: 'first',
      setup(ctx) {
        // Its disposer and signal come only once online, after the second's.
        ctx.hooks.on('online', () => {
          ctx.signal.addEventListener('abort', () => log.push('first aborted'))
          ctx.onDispose(() => {
            log.push('first disposed')
          })
        })
      },
    })
    const second = tracked('second', log)
    const { conn } = await online([first, second])
    await conn.dispose()
    expect(log).toEqual(['setup second', 'teardown second', 'first aborted', 'first disposed'])
  })

  test('an async setup failure with nobody connecting yet is reported, not lost', async () => {
    const reported: unknown[] = []
    const broken = definePlugin({
      name: 'broken',
      async setup() {
        await tick(5)
        throw new Error('no database')
      },
    })
    const { conn } = withPeer({ plugins: [broken], reportError: (e) => reported.push(e) })
    await tick(20)
    expect(reported).toEqual([expect.objectContaining({ code: 'setup-failed', plugin: 'broken' })])
    // connect() still fails with it.
    await expect(conn.connect()).rejects.toMatchObject({ code: 'setup-failed' })
  })

  test('two concurrent dispose() calls run each disposer once', async () => {
    const log: string[] = []
    const { conn } = await online([tracked('a', log)])
    await Promise.all([conn.dispose(), conn.dispose()])
    expect(log).toEqual(['setup a', 'teardown a'])
  })

  test('a dependency is the plugin object: another plugin with its name does not satisfy it', () => {
    const log: string[] = []
    const real = tracked('store', log)
    const impostor = tracked('store', log)
    const user = tracked('user', log, [real])
    const peer = newPeer()
    let error: unknown
    try {
      createConnection({
        transport: peer.transport,
        domain: 'example.com',
        plugins: [impostor, user],
      })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(PluginError)
    expect(error).toMatchObject({ code: 'missing-dependency', plugin: 'user' })
    expect((error as Error).message).toContain('different one')
  })

  test('a with() variant of the dependency satisfies it', () => {
    const base = definePlugin({ name: 'base', options: { n: 1 }, setup: (_c, o) => o })
    const user = definePlugin({
      name: 'user',
      dependencies: [base],
      setup: (ctx) => ({ n: ctx.get(base).n }),
    })
    const peer = newPeer()
    const conn = createConnection({
      transport: peer.transport,
      domain: 'example.com',
      plugins: [base.with({ n: 7 }), user],
    })
    expect(conn.plugins.user.n).toBe(7)
  })

  test('a teardown failure is teardown-failed; a duplicate stream feature is duplicate-feature', async () => {
    const errors: HookMap['error'][] = []
    const badTeardown = definePlugin({
      name: 'bad-teardown',
      setup(ctx) {
        ctx.onDispose(() => {
          throw new Error('cannot close')
        })
      },
    })
    const { conn } = await online([badTeardown])
    conn.hooks.on('error', (e) => {
      errors.push(e)
    })
    await conn.dispose()
    expect(errors.map((e) => (e.error as PluginError).code)).toEqual(['teardown-failed'])

    const feature = {
      name: 'f',
      priority: 1,
      applies: () => true,
      negotiate: async () => 'done' as const,
    }
    const one = definePlugin({ name: 'one', setup: (ctx) => ctx.feature(feature) })
    const two = definePlugin({ name: 'two', setup: (ctx) => ctx.feature(feature) })
    const peer = newPeer()
    expect(() =>
      createConnection({
        transport: peer.transport,
        domain: 'x',
        plugins: [one, two],
        timeouts: SHORT,
      }),
    ).toThrow(
      expect.objectContaining({
        code: 'setup-failed',
        cause: expect.objectContaining({ code: 'duplicate-feature' }),
      }),
    )
  })
})

describe('a malformed from', () => {
  // Checked by the core for every stanza (the router package tests the same with routes).
  test('ends the stream with invalid-from, before any handler sees it', async () => {
    const { peer, conn } = await online([inbox])
    const seen: string[] = []
    conn.plugins.inbox.message(() => {
      seen.push('handler')
    })
    const disconnected = conn.hooks.next('disconnected')
    peer.send("<message type='chat' from='a@@example.com'><body>x</body></message>")
    const { error } = await disconnected
    expect(error).toMatchObject({ condition: 'invalid-from' })
    expect(peer.written.join('')).toContain('<invalid-from')
    expect(seen).toEqual([])
  })
})
