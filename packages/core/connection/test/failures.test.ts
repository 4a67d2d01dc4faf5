// Every failure reaches the app at once, with its real cause: the session signal, pending
// requests, the `disconnected` reason, and errors that no handler was listening for.
import { describe, expect, test } from 'vitest'
import { ConnectionError, StreamError, TimeoutError } from '@core/errors'
import type { HookMap } from '../src/index.js'
import { MESSAGE_FRAMED, featurePlugin, inbox, online, record, tick, withPeer } from './helpers.js'

/** Resolves with the signal's reason once it aborts (or 'not aborted' after `ms`). */
function aborted(signal: AbortSignal, ms = 1000): Promise<unknown> {
  if (signal.aborted) return Promise.resolve(signal.reason)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('not aborted'), ms)
    signal.addEventListener('abort', () => {
      clearTimeout(timer)
      resolve(signal.reason)
    })
  })
}

describe('connection.signal ends with the cause', () => {
  test("the peer's stream error aborts it with that StreamError, at once", async () => {
    const { peer, conn } = await online()
    const started = performance.now()
    peer.send(
      "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    )
    const reason = await aborted(conn.signal)
    expect(reason).toBeInstanceOf(StreamError)
    expect(reason).toMatchObject({ condition: 'conflict', remote: true })
    // "At once": far below any request or step timeout (30 s / 10 s).
    expect(performance.now() - started).toBeLessThan(1000)
  })

  test('bad input we refuse aborts it with our StreamError (not-well-formed)', async () => {
    const { peer, conn } = await online()
    peer.send('<message><body>unclosed</message>')
    const reason = await aborted(conn.signal)
    expect(reason).toMatchObject({ condition: 'not-well-formed', remote: false })
    expect(peer.written.join('')).toContain('<not-well-formed')
  })

  test('a socket closed mid-stanza aborts it with ConnectionError disconnected', async () => {
    const { peer, conn } = await online()
    // Over RFC 7395 a message is whole or absent: only a byte stream can stop mid-stanza.
    if (!MESSAGE_FRAMED) peer.send("<message from='a@example.com'><body>half")
    peer.close(new Error('ECONNRESET'))
    const reason = await aborted(conn.signal)
    expect(reason).toBeInstanceOf(ConnectionError)
    expect(reason).toMatchObject({ code: 'disconnected' })
    expect(String((reason as Error).message)).toContain('ECONNRESET')
  })

  test("the app's own disconnect() aborts it with ConnectionError stopped", async () => {
    const { conn } = await online()
    const signal = conn.signal
    await conn.disconnect()
    expect(signal.aborted).toBe(true)
    expect(signal.reason).toMatchObject({ code: 'stopped' })
  })

  test('a new connect() after the end gives a new session and a new signal', async () => {
    const { peer, conn } = await online()
    const first = conn.signal
    peer.close()
    await aborted(first)
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '' })
    await connecting
    expect(conn.signal).not.toBe(first)
    expect(conn.signal.aborted).toBe(false)
  })

  test('a handler-based wait raced against the signal ends at once', async () => {
    const { peer, conn } = await online([inbox])
    const reply = new Promise((resolve, reject) => {
      conn.plugins.inbox.message((msg) => resolve(msg))
      conn.signal.addEventListener('abort', () => reject(conn.signal.reason))
    })
    peer.send(
      "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    )
    await expect(reply).rejects.toMatchObject({ condition: 'system-shutdown' })
  })

  test('a feature wait rejects with the drop, not its timeout', async () => {
    let waited: Promise<unknown> | undefined
    const plugin = featurePlugin('waits', 'waits', async (_features, nc) => {
      waited = nc.waitFor((el) => el.name === 'never', { timeout: 60_000 })
      await waited
      return 'done'
    })
    const { peer, conn } = withPeer({ plugins: [plugin] })
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '' })
    await tick()
    peer.send(
      "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    )
    await expect(connecting).rejects.toMatchObject({ condition: 'host-unknown' })
    await expect(waited).rejects.toMatchObject({ condition: 'host-unknown' })
  })
})

describe("the 'disconnected' reason tells the causes apart", () => {
  async function reasonOf(
    act: (ctx: Awaited<ReturnType<typeof online>>) => unknown,
  ): Promise<HookMap['disconnected']> {
    const ctx = await online()
    const next = ctx.conn.hooks.next('disconnected')
    await act(ctx)
    return next
  }

  test("the app's disconnect(), answered: stopped, clean", async () => {
    const d = await reasonOf(({ conn }) => conn.disconnect())
    expect(d).toMatchObject({ reason: 'stopped', clean: true, error: undefined })
  })

  test("the app's disconnect(), never answered: close-timeout, not clean", async () => {
    const d = await reasonOf(({ peer, conn }) => {
      peer.answerClose = false
      return conn.disconnect()
    })
    expect(d.reason).toBe('close-timeout')
    expect(d.clean).toBe(false)
    expect(d.error).toBeInstanceOf(TimeoutError)
    expect(d.error).toMatchObject({ step: 'close' })
  })

  test("our stream error, never answered, then the app's disconnect(): still stream-error", async () => {
    const d = await reasonOf(async ({ peer, conn }) => {
      peer.answerClose = false
      peer.send('<message><body>unclosed</message>')
      await tick()
      // The stream already failed; the app's disconnect() only waits for its end.
      return conn.disconnect()
    })
    expect(d.reason).toBe('stream-error')
    expect(d.error).toMatchObject({ condition: 'not-well-formed', remote: false })
  })

  test("the peer's stream error, its stream left open, then the app's disconnect(): still stream-error", async () => {
    const d = await reasonOf(async ({ peer, conn }) => {
      peer.answerClose = false
      peer.send("<stream:error><reset xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>")
      await tick()
      return conn.disconnect()
    })
    expect(d.reason).toBe('stream-error')
    expect(d.error).toMatchObject({ condition: 'reset', remote: true })
  })

  test("the app's disconnect() answered by a stream error instead of a close: stopped, not clean, with the peer's error", async () => {
    const d = await reasonOf(async ({ peer, conn }) => {
      peer.answerClose = false
      const closing = conn.disconnect()
      await tick()
      peer.send(
        "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
      )
      return closing
    })
    // The app's intent decides the reason (no reconnection after it asked to stop); the
    // error tells what the peer said instead of closing.
    expect(d.reason).toBe('stopped')
    expect(d.clean).toBe(false)
    expect(d.error).toBeInstanceOf(StreamError)
    expect(d.error).toMatchObject({ condition: 'system-shutdown', remote: true })
  })

  test('a network drop: dropped', async () => {
    const d = await reasonOf(({ peer }) => peer.close(new Error('EPIPE')))
    expect(d).toMatchObject({ reason: 'dropped', clean: false })
  })

  test('a stream error: stream-error with its condition', async () => {
    const d = await reasonOf(({ peer }) =>
      peer.send(
        "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
      ),
    )
    expect(d.reason).toBe('stream-error')
    expect(d.error).toMatchObject({ condition: 'policy-violation' })
  })

  test('the peer closing its stream: peer-closed', async () => {
    const d = await reasonOf(({ peer }) => peer.send('</stream:stream>'))
    expect(d.reason).toBe('peer-closed')
  })

  test('disconnect() while connecting: stopped, and connect() rejects with code stopped', async () => {
    const { peer, conn } = withPeer()
    const seen = record<HookMap['disconnected']>((fn) => conn.hooks.on('disconnected', fn))
    const connecting = conn.connect()
    const outcome = connecting.then(
      () => 'online',
      (error: unknown) => error,
    )
    await peer.nextHeader()
    await conn.disconnect()
    expect(await outcome).toMatchObject({ code: 'stopped' })
    expect(seen.map((d) => d.reason)).toEqual(['stopped'])
  })
})

describe('errors never vanish', () => {
  test('with no error hook, a throwing handler goes to the reporter as one line', async () => {
    const reported: Error[] = []
    const { peer, conn } = await online([inbox], {
      reportError: (error) => reported.push(error),
    })
    conn.plugins.inbox.message(() => {
      throw new Error('handler bug\nsecond line')
    })
    peer.send("<message from='a@example.com'><body>hi</body></message>")
    await tick()
    expect(reported.map((e) => e.message)).toEqual(['handler bug\nsecond line'])
  })

  test('the default reporter prints one line on stderr', async () => {
    const { peer, conn } = await online([inbox])
    const lines: string[] = []
    const original = console.error
    console.error = (...args: unknown[]) => lines.push(args.join(' '))
    try {
      conn.plugins.inbox.message(() => {
        throw new Error('handler bug\nsecret second line')
      })
      peer.send("<message from='a@example.com'><body>hi</body></message>")
      await tick()
    } finally {
      console.error = original
    }
    expect(lines).toEqual(['xmpp: unhandled Error: handler bug'])
  })

  test('a throwing error hook goes to the reporter, and the process does not crash', async () => {
    const reported: Error[] = []
    const { peer, conn } = await online([inbox], {
      reportError: (error) => reported.push(error),
    })
    conn.hooks.on('error', () => {
      throw new Error('error hook bug')
    })
    conn.plugins.inbox.message(() => {
      throw new Error('handler bug')
    })
    peer.send("<message from='a@example.com'><body>hi</body></message>")
    await tick(10)
    expect(reported.map((e) => e.message)).toEqual(['error hook bug'])
    expect(conn.state).toBe('online')
  })
})

describe('reconnection', () => {
  test("connect() from a 'disconnected' hook after a failed attempt starts a new attempt", async () => {
    const { peer, conn } = withPeer()
    peer.accept = false
    let retried: Promise<void> | undefined
    conn.hooks.on('disconnected', () => {
      if (retried) return
      peer.accept = true
      retried = conn.connect()
    })
    await expect(conn.connect()).rejects.toBeDefined()
    expect(retried).toBeDefined()
    await peer.nextHeader()
    peer.open({ features: '' })
    await retried
    expect(conn.state).toBe('online')
    expect(peer.targets).toHaveLength(2)
  })

  test("connect() from a 'disconnected' hook after a drop during the 'online' hooks starts a new attempt", async () => {
    const { peer, conn } = withPeer()
    let release: () => void = () => undefined
    let first = true
    conn.hooks.on('online', async () => {
      if (!first) return
      first = false
      // The app's post-connect work is still running when the link drops.
      await new Promise<void>((resolve) => {
        release = resolve
      })
    })
    let retried: Promise<void> | undefined
    conn.hooks.on('disconnected', () => {
      retried ??= conn.connect()
    })
    const connecting = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '' })
    await tick()
    peer.close()
    await tick()
    expect(retried).toBeDefined()
    expect(retried).not.toBe(connecting)
    await peer.nextHeader()
    peer.open({ features: '' })
    await retried
    expect(peer.targets).toHaveLength(2)
    expect(conn.state).toBe('online')
    release()
    await connecting
  })

  test('a reconnection keeps the registry and plugin state', async () => {
    const { peer, conn } = await online([inbox])
    const seen: string[] = []
    conn.plugins.inbox.message((msg) => {
      seen.push(String(msg.getChildText('body')))
    })
    peer.close()
    await tick()
    const again = conn.connect()
    await peer.nextHeader()
    peer.open({ features: '' })
    await again
    peer.send("<message from='a@example.com'><body>after</body></message>")
    await tick()
    expect(seen).toEqual(['after'])
  })
})
