// What stream management (XEP-0198) needs from the core, shown with a small fake SM plugin:
// holding send() calls while there is no stream, exact handled-counting across drops, and
// a burst of stanzas right after a feature's answer.
import type { Element } from '@core/xml'
import { describe, expect, test } from 'vitest'
import {
  definePlugin,
  FeaturePriority,
  type InboundContext,
  type PluginContext,
} from '../src/index.js'
import { xml } from '@core/xml'
import { StreamError } from '@core/errors'
import { inbox, online, record, tick, withPeer } from './helpers.js'

/**
 * Holds app stanzas sent while not online and sends them once online again; counts
 * handled inbound stanzas per stream. Only what the tests need, not XEP-0198.
 */
const fakeSm = definePlugin({
  name: 'fake-sm',
  setup(ctx: PluginContext) {
    const held: { element: Element; resolve: () => void; reject: (e: unknown) => void }[] = []
    const handled = new Map<number, number>()
    ctx.outbound((c, next) => {
      if (c.kind === 'stanza' && !c.negotiation && ctx.connection.state !== 'online') {
        c.delivery = new Promise<void>((resolve, reject) => {
          held.push({ element: c.element, resolve, reject })
        })
        return
      }
      return next()
    })
    ctx.hooks.on('online', () => {
      for (const h of held.splice(0)) ctx.connection.send(h.element).then(h.resolve, h.reject)
    })
    ctx.onHandled((c: InboundContext) => {
      if (c.kind === 'stanza') handled.set(c.stream, (handled.get(c.stream) ?? 0) + 1)
    })
    return {
      get held() {
        return held.length
      },
      handled,
      settled: (ms: number) => ctx.inboundSettled(ms),
      setTimeout: (fn: () => void, ms: number) => ctx.setTimeout(fn, ms),
      clearTimeout: (t: ReturnType<typeof setTimeout>) => ctx.clearTimeout(t),
    }
  },
})

describe('send() while not online', () => {
  test('without a plugin that holds it, send() rejects with not-connected', async () => {
    const { peer, conn } = await online()
    peer.close()
    await tick()
    await expect(conn.send(xml('message', { to: 'a@example.com' }))).rejects.toMatchObject({
      code: 'not-connected',
    })
  })

  test('while negotiating, an app stanza is refused, not written', async () => {
    const { peer, conn } = withPeer()
    const connecting = conn.connect()
    await peer.nextHeader()
    await expect(conn.send(xml('message', { id: 'early' }))).rejects.toMatchObject({
      code: 'not-connected',
    })
    peer.open({ features: '' })
    await connecting
    expect(peer.written.join('')).not.toContain('early')
  })

  test('a plugin can hold it after a drop; it is written after reconnecting and send() resolves then', async () => {
    const { peer, conn } = await online([fakeSm])
    peer.close(new Error('ECONNRESET'))
    await tick()
    let delivered = false
    const sending = conn.send(xml('message', { id: 'held', to: 'a@example.com' })).then(() => {
      delivered = true
    })
    await tick()
    expect(conn.plugins['fake-sm'].held).toBe(1)
    expect(delivered).toBe(false)
    const again = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '' })
    await again
    await sending
    const received = await peer.nextElement()
    expect(received.attrs.id).toBe('held')
  })
})

describe('inbound: a burst after a feature answer, handled counting', () => {
  test("1,000 stanzas in the same chunk right after a feature's answer are all delivered", async () => {
    const resume = definePlugin({
      name: 'resume',
      setup(ctx) {
        ctx.feature({
          name: 'resume',
          priority: FeaturePriority.RESUME,
          applies: () => true,
          async negotiate(_features, nc) {
            await nc.send(xml('resume', { xmlns: 'urn:example:resume' }))
            await nc.waitFor((el) => el.name === 'resumed')
            return 'done'
          },
        })
      },
    })
    const { peer, conn } = withPeer({ plugins: [resume, inbox] })
    const seen: string[] = []
    conn.plugins.inbox.message((msg) => {
      seen.push(String(msg.attrs.id))
    })
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '' })
    await peer.nextElement()
    let burst = "<resumed xmlns='urn:example:resume'/>"
    for (let i = 0; i < 1000; i++) burst += `<message from='a@example.com' id='m${i}'/>`
    peer.send(burst)
    await connecting
    await tick()
    expect(seen).toHaveLength(1000)
    expect(seen[999]).toBe('m999')
    expect(conn.state).toBe('online')
  })

  test('an async handler that completes after the drop is still reported handled, once', async () => {
    const { peer, conn } = await online([fakeSm, inbox])
    const releases: (() => void)[] = []
    conn.plugins.inbox.message(
      () =>
        new Promise<void>((resolve) => {
          releases.push(resolve)
        }),
    )
    const stream = 1
    for (let i = 0; i < 3; i++) peer.send(`<message from='a@example.com' id='x${i}'/>`)
    await tick()
    expect(releases).toHaveLength(1)
    peer.close(new Error('ECONNRESET'))
    await tick()
    expect(await conn.plugins['fake-sm'].settled(20)).toBe(false)
    // Handling goes on in order after the drop; each is reported once.
    while (releases.length > 0) {
      releases.shift()?.()
      await tick()
    }
    expect(await conn.plugins['fake-sm'].settled(1000)).toBe(true)
    expect([...conn.plugins['fake-sm'].handled]).toEqual([[stream, 3]])
  })

  test('a backlog behind a slow handler pauses the transport by bytes, and resumes once drained', async () => {
    const { peer, conn } = await online([inbox], { inboundHighWaterBytes: 64 * 1024 })
    const releases: (() => void)[] = []
    conn.plugins.inbox.message(
      () =>
        new Promise<void>((resolve) => {
          releases.push(resolve)
        }),
    )
    const body = 'x'.repeat(16 * 1024)
    // A few large elements: the bytes read meanwhile decide.
    for (let i = 0; i < 8; i++)
      peer.send(`<message from='a@example.com' id='b${i}'><body>${body}</body></message>`)
    await tick()
    expect(peer.paused).toBe(true)
    while (releases.length > 0 || peer.paused) {
      releases.shift()?.()
      await tick()
    }
    expect(peer.paused).toBe(false)
  })
})

describe('plugin timers', () => {
  test('a cleared timer does not fire; an uncleared one is stopped by dispose()', async () => {
    const { conn } = await online([fakeSm])
    const fired: string[] = []
    const api = conn.plugins['fake-sm']
    const cleared = api.setTimeout(() => fired.push('cleared'), 5)
    api.clearTimeout(cleared)
    api.setTimeout(() => fired.push('disposed'), 30)
    await tick(10)
    await conn.dispose()
    await tick(40)
    expect(fired).toEqual([])
  })
})

describe('seams added for stream management', () => {
  const seams = definePlugin({
    name: 'seams',
    setup(ctx: PluginContext) {
      const said: string[] = []
      ctx.hooks.on('closing', () => {
        said.push(ctx.connection.state)
        ctx.connection.send(xml('a', { xmlns: 'urn:example:sm', h: '7' })).then(undefined, () => {
          said.push('refused')
        })
      })
      return { said, fail: (e: StreamError, app?: Element) => ctx.fail(e, app) }
    },
  })

  test("'closing' runs while still online: what it sends goes out before the stream's close", async () => {
    const { peer, conn } = await online([seams])
    await conn.disconnect()
    expect(conn.plugins.seams.said).toEqual(['online'])
    const all = peer.written.join('')
    expect(all.indexOf("h='7'") >= 0 || all.indexOf('h="7"') >= 0).toBe(true)
    const a = all.search(/h=['"]7['"]/)
    expect(a).toBeLessThan(all.lastIndexOf(peer.closeMarker))
  })

  test('ctx.fail() sends our stream error with an application condition, and the drop is not resumable', async () => {
    const { peer, conn } = await online([seams])
    conn.resumable = true
    const seen = record<{ reason: string; resumable: boolean }>((fn) =>
      conn.hooks.on('disconnected', fn),
    )
    conn.plugins.seams.fail(
      new StreamError('undefined-condition'),
      xml('handled-count-too-high', { xmlns: 'urn:xmpp:sm:3', h: '5', 'send-count': '2' }),
    )
    await peer.waitForEnd()
    const all = peer.written.join('')
    expect(all).toMatch(/<undefined-condition[^>]*\/><handled-count-too-high[^>]*urn:xmpp:sm:3/)
    await tick(10)
    expect(seen).toMatchObject([{ reason: 'stream-error', resumable: false }])
    expect(conn.signal.aborted).toBe(true)
  })

  test('nextTarget sends the next attempt (once) to a given host and port; stream counts attempts', async () => {
    const { peer, conn } = await online()
    const first = conn.stream
    await conn.disconnect()
    conn.nextTarget = { host: 'other.example', port: 5999 }
    const again = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '' })
    await again
    expect(conn.stream).toBe(first + 1)
    expect(peer.targets.at(-1)).toMatchObject({ host: 'other.example', port: 5999 })
    expect(conn.nextTarget).toBeUndefined()
  })

  test('a session a plugin ended during negotiation gives way to a new one once online', async () => {
    const ender = definePlugin({
      name: 'ender',
      setup(ctx) {
        ctx.feature({
          name: 'ender',
          priority: 1,
          applies: () => true,
          async negotiate() {
            ctx.connection.endSession()
            return 'continue'
          },
        })
      },
    })
    const { peer, conn } = withPeer({ plugins: [ender] })
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '' })
    await connecting
    expect(conn.signal.aborted).toBe(false)
  })
})

test('disconnect() between a drop and a resumption ends the kept session', async () => {
  const { peer, conn } = await online()
  conn.resumable = true
  peer.close(new Error('ECONNRESET'))
  await tick()
  expect(conn.signal.aborted).toBe(false)
  const ended = conn.hooks.next('session-end')
  await conn.disconnect()
  expect(conn.resumable).toBe(false)
  expect((await ended).error).toMatchObject({ code: 'stopped' })
  expect(conn.signal.aborted).toBe(true)
})

describe("an element's place in the text of its write (OutboundContext batch and offset)", () => {
  /** Records, for each stanza, its data and what `batch.text` holds at its offset (read later). */
  const keeper = definePlugin({
    name: 'keeper',
    setup(ctx: PluginContext) {
      const kept: { data: string; at: () => string | undefined }[] = []
      ctx.outbound((c, next) => {
        const result = next()
        const { batch, offset, data } = c
        if (c.kind === 'stanza' && data !== undefined) {
          kept.push({
            data,
            at: () =>
              batch && offset >= 0 ? batch.text.slice(offset, offset + data.length) : undefined,
          })
        }
        return result
      })
      return { kept }
    },
  })

  test('every stanza of a tick is found in the text written, before the write, after it, and after a failed write', async () => {
    const { peer, conn } = await online([keeper])
    const kept = conn.plugins.keeper.kept
    const sends = [1, 2, 3].map((i) =>
      conn.send(xml('message', { id: `m${i}`, to: 'a@example.com' })),
    )
    // One element per write (WebSocket): no shared text, each keeps its own data.
    const expected = () => kept.map((k) => (peer.framing.batch ? k.data : undefined))
    // Not written yet: the text so far already holds them.
    expect(kept.map((k) => k.at())).toEqual(expected())
    await Promise.all(sends)
    expect(kept.map((k) => k.at())).toEqual(expected())
    const written = peer.framing.batch ? peer.written.at(-1) : peer.written.slice(-3).join('')
    expect(written).toBe(kept.map((k) => k.data).join(''))
    // A write the stream ended before: its text is still there for a resend.
    const failing = conn.send(xml('message', { id: 'lost', to: 'a@example.com' }))
    peer.close(new Error('ECONNRESET'))
    await expect(failing).rejects.toBeDefined()
    expect(kept.at(-1)?.at()).toBe(expected().at(-1))
    expect(kept.at(-1)?.data).toContain('id="lost"')
  })
})
