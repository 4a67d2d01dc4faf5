import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest'
import { xml } from '@core/xml'
import { iq } from '@core/iq'
import {
  accept,
  fakeResume,
  NS_FAKE_RESUME,
  startedOnline,
  TIMEOUTS,
  withLifecycle,
} from './helpers.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('states and hooks', () => {
  test('start(): connecting, then online; post-connect fires once', async () => {
    const { peer, conn, states, hooks } = withLifecycle({ idleTimeout: 0 })
    await startedOnline(peer, conn.plugins.lifecycle.start())
    expect(states).toEqual([{ state: 'connecting' }, { state: 'online', resumed: false }])
    expect(hooks).toEqual(['post-connect'])
    expect(conn.plugins.lifecycle.state).toEqual({ state: 'online', resumed: false })
  })

  test('a switch over the state narrows its payload', async () => {
    const { peer, conn } = withLifecycle({ idleTimeout: 0 })
    const seen: string[] = []
    conn.hooks.on('lifecycle', (s) => {
      switch (s.state) {
        case 'online':
          seen.push(`online resumed=${s.resumed}`)
          break
        case 'disconnected':
          seen.push(`disconnected ${s.reason} resumable=${s.resumable} ${s.cause.code}`)
          break
        case 'reconnecting':
          seen.push(`reconnecting #${s.attempt} in ${s.delay} ms`)
          break
        case 'permanent-error':
          seen.push(`permanent ${s.error.code}`)
          break
        default:
          seen.push(s.state)
      }
    })
    await startedOnline(peer, conn.plugins.lifecycle.start())
    peer.close(new Error('ECONNRESET'))
    await vi.advanceTimersByTimeAsync(0)
    await accept(peer)
    await vi.advanceTimersByTimeAsync(0)
    expect(seen).toEqual([
      'connecting',
      'online resumed=false',
      'disconnected dropped resumable=false disconnected',
      'reconnecting #1 in 0 ms',
      'connecting',
      'online resumed=false',
    ])
  })

  test('a post-connect handler that throws is reported; the connection stays up', async () => {
    const { peer, conn, states, errors } = withLifecycle({ idleTimeout: 0 })
    conn.hooks.on('post-connect', async () => {
      throw new Error('roster fetch failed')
    })
    await startedOnline(peer, conn.plugins.lifecycle.start())
    await vi.advanceTimersByTimeAsync(1000)
    expect(errors.map((e) => e.message)).toEqual(['roster fetch failed'])
    expect(conn.state).toBe('online')
    expect(states.at(-1)).toEqual({ state: 'online', resumed: false })
    // Still usable: the peer gets what we send.
    await conn.send(xml('message', { to: 'a@example.com', id: 'after' }))
    expect((await peer.nextElement()).attrs.id).toBe('after')
  })

  test("hookErrors 'fatal': a throwing post-connect closes the connection as a permanent error", async () => {
    const { peer, conn, states, errors } = withLifecycle({ idleTimeout: 0, hookErrors: 'fatal' })
    conn.hooks.on('post-connect', () => {
      throw new Error('no roster')
    })
    const started = conn.plugins.lifecycle.start()
    await accept(peer)
    await expect(started).rejects.toMatchObject({ code: 'hook-failed' })
    await vi.advanceTimersByTimeAsync(1000)
    expect(conn.state).toBe('disconnected')
    const last = states.at(-1)
    expect(last?.state).toBe('permanent-error')
    if (last?.state !== 'permanent-error') return
    expect(last.error).toMatchObject({ code: 'hook-failed' })
    expect((last.error.cause as Error).message).toBe('no roster')
    expect(errors).toEqual([])
    await vi.advanceTimersByTimeAsync(600_000)
    expect(peer.targets).toHaveLength(1)
  })
})

describe('reconnection', () => {
  test('a drop: disconnected, a prompt retry, online again, post-connect again', async () => {
    const { peer, conn, states, hooks } = withLifecycle({ idleTimeout: 0 })
    await startedOnline(peer, conn.plugins.lifecycle.start())
    peer.close(new Error('ECONNRESET'))
    await vi.advanceTimersByTimeAsync(0)
    await accept(peer)
    await vi.advanceTimersByTimeAsync(0)
    expect(conn.state).toBe('online')
    expect(states.map((s) => s.state)).toEqual([
      'connecting',
      'online',
      'disconnected',
      'reconnecting',
      'connecting',
      'online',
    ])
    expect(states[3]).toEqual({ state: 'reconnecting', attempt: 1, delay: 0 })
    expect(hooks).toEqual(['post-connect', 'post-connect (again)'])
    expect(peer.targets).toHaveLength(2)
  })

  test('a drop while post-connect still runs: the retry does not wait for it', async () => {
    const { peer, conn, hooks } = withLifecycle({ idleTimeout: 0 })
    let release: () => void = () => undefined
    conn.hooks.on('post-connect', ({ reconnected }) =>
      reconnected
        ? undefined
        : new Promise<void>((resolve) => {
            release = resolve
          }),
    )
    const started = conn.plugins.lifecycle.start()
    await accept(peer)
    await vi.advanceTimersByTimeAsync(0)
    peer.close(new Error('ECONNRESET'))
    await vi.advanceTimersByTimeAsync(0)
    // The first connect() has not returned yet (its post-connect runs), and the prompt retry
    // is a new attempt all the same.
    expect(peer.targets).toHaveLength(2)
    await accept(peer)
    await vi.advanceTimersByTimeAsync(0)
    expect(conn.state).toBe('online')
    expect(hooks).toEqual(['post-connect', 'post-connect (again)'])
    release()
    await started
    expect(peer.targets).toHaveLength(2)
  })

  test('a plain connect() is covered too once online; its own first failure is left to the caller', async () => {
    const { peer, conn, states } = withLifecycle({ idleTimeout: 0 })
    peer.accept = false
    await expect(conn.connect()).rejects.toThrow('connection refused')
    await vi.advanceTimersByTimeAsync(600_000)
    expect(peer.targets).toHaveLength(1)
    expect(states.map((s) => s.state)).toEqual(['connecting', 'disconnected'])
    peer.accept = true
    const online = conn.connect()
    await accept(peer)
    await online
    peer.close(new Error('ECONNRESET'))
    await vi.advanceTimersByTimeAsync(0)
    await accept(peer)
    await vi.advanceTimersByTimeAsync(0)
    expect(conn.state).toBe('online')
    expect(peer.targets).toHaveLength(3)
  })

  test('the backoff schedule: prompt, then exponential with jitter, capped', async () => {
    const backoff = { initial: 100, factor: 2, max: 1000, jitter: 0.5 }
    const { peer, conn, states } = withLifecycle({
      idleTimeout: 0,
      backoff,
      random: Math.random,
      maxAttempts: 10,
    })
    const attemptsAt: number[] = []
    conn.hooks.on('state', ({ state }) => {
      if (state === 'connecting') attemptsAt.push(Date.now())
    })
    peer.accept = false
    const started = conn.plugins.lifecycle.start()
    const failure = started.then(
      () => undefined,
      (e: unknown) => e,
    )
    await vi.advanceTimersByTimeAsync(60_000)
    expect(await failure).toMatchObject({ code: 'retries-exhausted' })
    const delays = states.flatMap((s) => (s.state === 'reconnecting' ? [s.delay] : []))
    expect(states.flatMap((s) => (s.state === 'reconnecting' ? [s.attempt] : []))).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    ])
    // Each attempt started exactly the announced delay after the previous one failed.
    expect(attemptsAt).toHaveLength(11)
    expect(attemptsAt.slice(1).map((t, i) => t - (attemptsAt[i] as number))).toEqual(delays)
    expect(delays[0]).toBe(0)
    for (let k = 1; k < delays.length; k++) {
      const base = Math.min(backoff.max, backoff.initial * backoff.factor ** (k - 1))
      expect(delays[k]).toBeGreaterThanOrEqual(Math.floor(base * (1 - backoff.jitter)))
      expect(delays[k]).toBeLessThanOrEqual(base)
    }
  })

  test('maxAttempts: the attempts run out and that is reported once, as permanent', async () => {
    const { peer, conn, states } = withLifecycle({ idleTimeout: 0, maxAttempts: 3 })
    peer.accept = false
    const started = conn.plugins.lifecycle.start()
    const failure = started.then(
      () => undefined,
      (e: unknown) => e,
    )
    await vi.advanceTimersByTimeAsync(600_000)
    expect(peer.targets).toHaveLength(4) // the first attempt and three retries
    const permanent = states.filter((s) => s.state === 'permanent-error')
    expect(permanent).toHaveLength(1)
    expect(await failure).toMatchObject({ code: 'retries-exhausted' })
    expect(((await failure) as Error).message).toMatch(/^gave up after 3 attempts: /)
    expect(vi.getTimerCount()).toBe(0)
  })

  test('maxAttempts 1: the message counts one attempt', async () => {
    const { peer, conn } = withLifecycle({ idleTimeout: 0, maxAttempts: 1 })
    peer.accept = false
    const failure = conn.plugins.lifecycle.start().then(
      () => undefined,
      (e: unknown) => e,
    )
    await vi.advanceTimersByTimeAsync(600_000)
    expect(((await failure) as Error).message).toMatch(/^gave up after 1 attempt: /)
  })

  test('a permanent stream error (conflict) is reported once and nothing reconnects', async () => {
    const { peer, conn, states } = withLifecycle({ idleTimeout: 0 })
    await startedOnline(peer, conn.plugins.lifecycle.start())
    peer.send(
      "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
    )
    await vi.advanceTimersByTimeAsync(600_000)
    expect(peer.targets).toHaveLength(1)
    const permanent = states.filter((s) => s.state === 'permanent-error')
    expect(permanent).toHaveLength(1)
    expect(permanent[0]).toMatchObject({ error: { condition: 'conflict', remote: true } })
    expect(states.map((s) => s.state)).not.toContain('reconnecting')
  })

  test('a transient stream error (system-shutdown) waits a backoff delay before retrying', async () => {
    const { peer, conn, states } = withLifecycle({
      idleTimeout: 0,
      backoff: { initial: 1000, jitter: 0 },
    })
    await startedOnline(peer, conn.plugins.lifecycle.start())
    peer.send(
      "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
    )
    await vi.advanceTimersByTimeAsync(0)
    expect(states.at(-1)).toEqual({ state: 'reconnecting', attempt: 1, delay: 1000 })
    await vi.advanceTimersByTimeAsync(999)
    expect(peer.targets).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    await accept(peer)
    await vi.advanceTimersByTimeAsync(0)
    expect(conn.state).toBe('online')
  })

  test('stop() during a backoff wait: nothing reconnects and no timer is left', async () => {
    const { peer, conn, states } = withLifecycle({ backoff: { initial: 5000 } })
    await startedOnline(peer, conn.plugins.lifecycle.start())
    peer.accept = false
    peer.close(new Error('ECONNRESET'))
    await vi.advanceTimersByTimeAsync(0) // the prompt retry fails
    expect(states.at(-1)).toMatchObject({ state: 'reconnecting', attempt: 2 })
    const tried = peer.targets.length
    await conn.plugins.lifecycle.stop()
    expect(states.at(-1)).toEqual({ state: 'stopped' })
    await vi.advanceTimersByTimeAsync(TIMEOUTS.close) // the core's own close deadline
    expect(vi.getTimerCount()).toBe(0)
    peer.accept = true
    await vi.advanceTimersByTimeAsync(600_000)
    expect(peer.targets).toHaveLength(tried)
    expect(conn.state).toBe('disconnected')
  })

  test("the app's conn.disconnect() during a backoff wait cancels the retry like stop()", async () => {
    const { peer, conn, states } = withLifecycle({ backoff: { initial: 5000 } })
    await startedOnline(peer, conn.plugins.lifecycle.start())
    peer.send(
      "<stream:error><reset xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
    )
    await vi.advanceTimersByTimeAsync(0)
    expect(states.at(-1)).toMatchObject({ state: 'reconnecting', attempt: 1, delay: 5000 })
    expect(conn.transport).toBeUndefined()
    await conn.disconnect()
    expect(states.at(-1)).toEqual({ state: 'stopped' })
    await vi.advanceTimersByTimeAsync(600_000)
    // No transport connect after the app asked to stop.
    expect(peer.targets).toHaveLength(1)
    expect(conn.state).toBe('disconnected')
    expect(vi.getTimerCount()).toBe(0)
  })

  test('the AbortSignal option cancels a pending retry like stop()', async () => {
    const controller = new AbortController()
    const { peer, conn, states } = withLifecycle({
      backoff: { initial: 5000 },
      signal: controller.signal,
    })
    await startedOnline(peer, conn.plugins.lifecycle.start())
    peer.send(
      "<stream:error><reset xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
    )
    await vi.advanceTimersByTimeAsync(0)
    expect(states.at(-1)).toMatchObject({ state: 'reconnecting', attempt: 1, delay: 5000 })
    controller.abort()
    await vi.advanceTimersByTimeAsync(0)
    expect(states.at(-1)).toEqual({ state: 'stopped' })
    await vi.advanceTimersByTimeAsync(TIMEOUTS.close) // the core's own close deadline
    expect(vi.getTimerCount()).toBe(0)
    await vi.advanceTimersByTimeAsync(600_000)
    expect(peer.targets).toHaveLength(1)
  })

  test('stop() while online closes cleanly and reports stopped once', async () => {
    const { peer, conn, states } = withLifecycle()
    await startedOnline(peer, conn.plugins.lifecycle.start())
    await conn.plugins.lifecycle.stop()
    expect(states.map((s) => s.state)).toEqual(['connecting', 'online', 'stopped'])
    expect(peer.streamEnded).toBe(true)
    await vi.advanceTimersByTimeAsync(TIMEOUTS.close) // the core's own close deadline
    expect(vi.getTimerCount()).toBe(0)
  })

  test('reconnect: false reports the drop and leaves the rest to the app', async () => {
    const { peer, conn, states } = withLifecycle({ reconnect: false, idleTimeout: 0 })
    await startedOnline(peer, conn.plugins.lifecycle.start())
    peer.close(new Error('ECONNRESET'))
    await vi.advanceTimersByTimeAsync(600_000)
    expect(states.map((s) => s.state)).toEqual(['connecting', 'online', 'disconnected'])
    expect(peer.targets).toHaveLength(1)
  })
})

describe('resumption (the seam with stream management)', () => {
  test('a resumable session: resuming, online {resumed}, post-resume and not post-connect', async () => {
    const { peer, conn, states, hooks, downtimes } = withLifecycle({ idleTimeout: 0 }, [fakeResume])
    await startedOnline(peer, conn.plugins.lifecycle.start())
    peer.close(new Error('ECONNRESET'))
    await vi.advanceTimersByTimeAsync(0)
    await vi.advanceTimersByTimeAsync(250) // the server takes its time
    await accept(peer)
    const resume = await peer.nextElement()
    expect(resume.name).toBe('resume')
    peer.send(`<resumed xmlns='${NS_FAKE_RESUME}'/>`)
    await vi.advanceTimersByTimeAsync(0)
    expect(states.map((s) => s.state)).toEqual([
      'connecting',
      'online',
      'disconnected',
      'reconnecting',
      'resuming',
      'online',
    ])
    expect(states[2]).toMatchObject({ resumable: true })
    expect(states.at(-1)).toEqual({ state: 'online', resumed: true })
    expect(hooks).toEqual(['post-connect', 'post-resume'])
    expect(downtimes).toEqual([250])
  })

  test('the session expired: <failed/>, a new session, and post-connect fires', async () => {
    const { peer, conn, states, hooks } = withLifecycle({ idleTimeout: 0 }, [fakeResume])
    await startedOnline(peer, conn.plugins.lifecycle.start())
    peer.close(new Error('ECONNRESET'))
    await vi.advanceTimersByTimeAsync(0)
    await accept(peer)
    await peer.nextElement()
    peer.send(`<failed xmlns='${NS_FAKE_RESUME}'/>`)
    await vi.advanceTimersByTimeAsync(0)
    expect(states.at(-2)).toEqual({ state: 'resuming' })
    expect(states.at(-1)).toEqual({ state: 'online', resumed: false })
    expect(hooks).toEqual(['post-connect', 'post-connect (again)'])
  })

  test('a permanent error while resumable ends the session (nobody will resume it)', async () => {
    const { peer, conn } = withLifecycle({ idleTimeout: 0 }, [fakeResume])
    await startedOnline(peer, conn.plugins.lifecycle.start())
    const signal = conn.signal
    peer.send(
      "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
    )
    await vi.advanceTimersByTimeAsync(1000)
    expect(signal.aborted).toBe(true)
    expect(signal.reason).toMatchObject({ condition: 'conflict' })
    expect(conn.resumable).toBe(false)
  })

  test('stop() while a resumable session waits to be resumed ends it', async () => {
    const { peer, conn } = withLifecycle({ idleTimeout: 0, backoff: { initial: 5000 } }, [
      fakeResume,
    ])
    await startedOnline(peer, conn.plugins.lifecycle.start())
    const signal = conn.signal
    // A drop keeps the session resumable (a stream error would end it: the server does not
    // keep a session for resumption after one).
    peer.close(new Error('ECONNRESET'))
    await vi.advanceTimersByTimeAsync(0)
    expect(signal.aborted).toBe(false)
    await conn.plugins.lifecycle.stop()
    expect(signal.aborted).toBe(true)
    expect(signal.reason).toMatchObject({ code: 'stopped' })
  })
})

describe('dead-connection detection', () => {
  test('a silent peer: probed after idleTimeout, dropped after probeTimeout, then reconnected', async () => {
    const { peer, conn, states } = withLifecycle({ idleTimeout: 1000, probeTimeout: 500 }, [iq])
    await startedOnline(peer, conn.plugins.lifecycle.start())
    await vi.advanceTimersByTimeAsync(999)
    expect(peer.queued).toHaveLength(0)
    await vi.advanceTimersByTimeAsync(1)
    const ping = await peer.nextElement()
    expect(ping.attrs).toMatchObject({ type: 'get', to: 'example.com' })
    expect(ping.getChild('ping', 'urn:xmpp:ping')).toBeDefined()
    await vi.advanceTimersByTimeAsync(499)
    expect(conn.state).toBe('online')
    await vi.advanceTimersByTimeAsync(1)
    expect(conn.state).not.toBe('online')
    const dropped = states.find((s) => s.state === 'disconnected')
    expect(dropped).toMatchObject({ reason: 'dropped' })
    // The prompt retry (a 0 ms timer set while the fake clock ticks runs 1 ms later).
    await vi.advanceTimersByTimeAsync(1)
    await accept(peer)
    await vi.advanceTimersByTimeAsync(0)
    expect(conn.state).toBe('online')
  })

  test('an answered probe keeps the connection; inbound data postpones the probe', async () => {
    const { peer, conn } = withLifecycle({ idleTimeout: 1000, probeTimeout: 500 }, [iq])
    await startedOnline(peer, conn.plugins.lifecycle.start())
    await vi.advanceTimersByTimeAsync(800)
    peer.send(' ')
    await vi.advanceTimersByTimeAsync(999)
    expect(peer.queued).toHaveLength(0) // 1799 ms: 999 ms since the last byte
    await vi.advanceTimersByTimeAsync(1)
    const ping = await peer.nextElement()
    peer.send(`<iq type='result' id='${ping.attrs.id}' from='example.com'/>`)
    await vi.advanceTimersByTimeAsync(600)
    expect(conn.state).toBe('online')
    expect(peer.targets).toHaveLength(1)
  })

  test('a probe given as option (an SM ack request) is used, with its signal', async () => {
    let signal: AbortSignal | undefined
    const { peer, conn, states } = withLifecycle({
      idleTimeout: 1000,
      probeTimeout: 500,
      probe: (s) => {
        signal = s
        return new Promise(() => undefined)
      },
    })
    await startedOnline(peer, conn.plugins.lifecycle.start())
    await vi.advanceTimersByTimeAsync(1500)
    expect(signal?.aborted).toBe(true)
    expect(states.find((s) => s.state === 'disconnected')).toBeDefined()
  })

  test('without a probe or iq plugin: a whitespace keepalive each idle period', async () => {
    const { peer, conn } = withLifecycle({ idleTimeout: 1000 })
    await startedOnline(peer, conn.plugins.lifecycle.start())
    const before = peer.written.length
    await vi.advanceTimersByTimeAsync(1000)
    expect(peer.written.slice(before)).toEqual([' '])
    await vi.advanceTimersByTimeAsync(1000)
    expect(peer.written.slice(before)).toEqual([' ', ' '])
    expect(conn.state).toBe('online')
  })

  test("browsers: 'online' retries at once; 'offline' probes the connection", async () => {
    const target = new EventTarget()
    const g = globalThis as unknown as Record<string, unknown>
    g.addEventListener = target.addEventListener.bind(target)
    g.removeEventListener = target.removeEventListener.bind(target)
    try {
      const { peer, conn } = withLifecycle(
        { idleTimeout: 60_000, probeTimeout: 500, backoff: { initial: 30_000 } },
        [iq],
      )
      const started = conn.plugins.lifecycle.start()
      await accept(peer)
      await started
      target.dispatchEvent(new Event('offline'))
      const ping = await peer.nextElement()
      expect(ping.getChild('ping', 'urn:xmpp:ping')).toBeDefined()
      peer.accept = false
      await vi.advanceTimersByTimeAsync(500) // no answer: dropped
      await vi.advanceTimersByTimeAsync(1) // the prompt retry is refused
      expect(conn.plugins.lifecycle.state).toMatchObject({ state: 'reconnecting', attempt: 2 })
      peer.accept = true
      target.dispatchEvent(new Event('online'))
      await accept(peer)
      await vi.advanceTimersByTimeAsync(0)
      expect(conn.state).toBe('online')
      // 'online' while connected (another network): the connection is checked.
      target.dispatchEvent(new Event('online'))
      const check = await peer.nextElement()
      expect(check.getChild('ping', 'urn:xmpp:ping')).toBeDefined()
      peer.send(`<iq type='result' id='${check.attrs.id}' from='example.com'/>`)
      await vi.advanceTimersByTimeAsync(1000)
      expect(conn.state).toBe('online')
      expect(peer.targets).toHaveLength(3)
      await conn.dispose()
    } finally {
      delete g.addEventListener
      delete g.removeEventListener
    }
  })
})
