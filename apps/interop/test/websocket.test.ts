// XMPP over WebSocket (RFC 7395) against Prosody's mod_websocket: the same SASL and bind
// plugins over @transport/ws, and messages between a WebSocket client and a TCP client.
import { bind } from '@client/bind'
import { sasl } from '@client/sasl'
import { createConnection } from '@core/connection'
import { xml } from '@core/xml'
import { lifecycle } from '@hooks/lifecycle'
import { WebSocketTransport, websocket } from '@transport/ws'
import { sm } from '@xep/0198-sm'
import type { Element } from 'ltx'
import { afterEach, describe, expect, test } from 'vitest'
import { authEventsSince, logMark, newClient, prosody, server } from './prosody.js'

const open: { disconnect(): Promise<void> }[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.disconnect()))
})

function wsClient(
  user: string,
  options: { domain?: string; resource?: string; mechanisms?: string[] } = {},
) {
  const s = server()
  const password = s.users[user]
  if (password === undefined) throw new Error(`no test user ${user}`)
  const conn = createConnection({
    transport: websocket(),
    service: s.websocketUrl,
    domain: options.domain ?? s.domain,
    plugins: [
      sasl.with({
        username: user,
        password,
        ...(options.mechanisms ? { mechanisms: options.mechanisms } : {}),
      }),
      bind.with({ resource: options.resource ?? 'ws' }),
    ],
  })
  open.push(conn)
  return conn
}

/** The next message with a body that arrives on `subscribe`'s connection. */
function nextBody(
  subscribe: (fn: (element: Element) => void) => unknown,
  timeoutMs = 5000,
): Promise<Element> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no message within ${timeoutMs} ms`)),
      timeoutMs,
    )
    subscribe((element) => {
      if (element.name !== 'message' || element.getChild('body') === undefined) return
      clearTimeout(timer)
      resolve(element)
    })
  })
}

describe.skipIf(!prosody)('XMPP over WebSocket against Prosody', () => {
  test('logs in over ws://127.0.0.1/xmpp-websocket with SCRAM-SHA-1 and binds', async () => {
    const s = server()
    expect(s.websocketUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/xmpp-websocket$/)
    const mark = logMark()
    const conn = wsClient('walt', { resource: 'ws-login' })
    await conn.connect()
    expect(conn.state).toBe('online')
    expect(conn.transport).toBeInstanceOf(WebSocketTransport)
    expect(conn.plugins.sasl.mechanism).toBe('SCRAM-SHA-1')
    expect(conn.jid?.toString()).toBe(`walt@${s.domain}/ws-login`)
    expect(authEventsSince(mark).filter((e) => e.user === 'walt' && e.host === s.domain)).toEqual([
      { outcome: 'auth-success', host: s.domain, user: 'walt', condition: undefined },
    ])
    await conn.disconnect()
    expect(conn.state).toBe('disconnected')
  })

  test('SCRAM-SHA-256 on the host that stores SHA-256 keys', async () => {
    const s = server()
    const conn = wsClient('walt', { domain: s.sha256Domain, mechanisms: ['SCRAM-SHA-256'] })
    await conn.connect()
    expect(conn.plugins.sasl.mechanism).toBe('SCRAM-SHA-256')
    expect(conn.jid?.bare().toString()).toBe(`walt@${s.sha256Domain}`)
  })

  test('a WebSocket client and a TCP client exchange messages both ways', async () => {
    const s = server()
    const web = wsClient('walt', { resource: 'web' })
    // Both resources of one account: the SASL events other files count stay theirs.
    const tcp = newClient('walt', { resource: 'tcp' })
    await Promise.all([web.connect(), tcp.connect()])

    const atTcp = nextBody((fn) => tcp.hooks.on('stanza', ({ element }) => fn(element)))
    await web.send(
      xml(
        'message',
        { to: `walt@${s.domain}/tcp`, type: 'chat', id: 'w1' },
        xml('body', {}, 'from the web'),
      ),
    )
    const got = await atTcp
    expect(got.getChildText('body')).toBe('from the web')
    expect(got.attrs.from).toBe(`walt@${s.domain}/web`)

    const atWeb = nextBody((fn) => web.hooks.on('stanza', ({ element }) => fn(element)))
    await tcp.send(
      xml(
        'message',
        { to: `walt@${s.domain}/web`, type: 'chat', id: 't1' },
        xml('body', {}, 'from tcp'),
      ),
    )
    const back = await atWeb
    expect(back.getChildText('body')).toBe('from tcp')
    expect(back.attrs.from).toBe(`walt@${s.domain}/tcp`)
  })

  test('stream management over WebSocket: a dropped WebSocket is resumed, and what was sent meanwhile arrives once', async () => {
    const s = server()
    const password = s.users.walt as string
    const web = createConnection({
      transport: websocket(),
      service: s.websocketUrl,
      domain: s.domain,
      plugins: [
        sasl.with({ username: 'walt', password }),
        bind.with({ resource: 'web-sm' }),
        sm,
        lifecycle.with({ idleTimeout: 0 }),
      ],
    })
    open.push({ disconnect: () => web.plugins.lifecycle.stop() })
    const tcp = newClient('walt', { resource: 'tcp-sm' })
    await Promise.all([web.plugins.lifecycle.start(), tcp.connect()])
    expect(web.plugins.sm.resumable).toBe(true)
    const seen: string[] = []
    tcp.hooks.on('stanza', ({ element }) => {
      if (element.getChildText('body') === 'sent during the outage')
        seen.push(element.attrs.id ?? '')
    })
    const resumed = web.hooks.next('post-resume')
    web.transport?.destroy()
    const delivered = web.send(
      xml(
        'message',
        { to: `walt@${s.domain}/tcp-sm`, type: 'chat', id: 'outage-1' },
        xml('body', {}, 'sent during the outage'),
      ),
    )
    await resumed
    await delivered
    await expect.poll(() => seen, { timeout: 5000 }).toEqual(['outage-1'])
    // A duplicate would come right behind it.
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(seen).toEqual(['outage-1'])
  })
})
