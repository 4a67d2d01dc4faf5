import { createServer } from 'node:net'
import { createClient } from '@client/preset'
import { createConnection } from '@core/connection'
import { StreamError } from '@core/errors'
import { iq } from '@core/iq'
import { packetLog } from '@core/packet-log'
import { router } from '@core/router'
import { type Element, xml } from '@core/xml'
import { startTestServer, type TestServer } from '@test/server'
import { tcp } from '@transport/tcp'
import { ping } from '@xep/0199-ping'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { ComponentError, component } from '../src/index.js'

const SECRET = 'sh4red s3cret ü'
let server: TestServer

beforeAll(async () => {
  server = await startTestServer({
    users: { alice: 'alice-pw' },
    components: { 'echo.localhost': SECRET, 'other.localhost': 'other-secret' },
  })
})
afterAll(async () => {
  await server.close()
})

const SHORT = { connect: 2000, negotiation: 1000, close: 500 }

function echo(options: { secret?: string; domain?: string; log?: string[] } = {}) {
  return createConnection({
    transport: tcp({ allowPlaintext: true }),
    domain: options.domain ?? 'echo.localhost',
    service: server.componentService,
    timeouts: SHORT,
    plugins: [
      component.with({ secret: options.secret ?? SECRET }),
      iq,
      router,
      ping,
      packetLog.with({
        enabled: options.log !== undefined,
        write: (line: string) => options.log?.push(line),
      }),
    ],
  })
}

function alice() {
  return createClient({
    service: server.service,
    jid: 'alice@localhost/desk',
    password: 'alice-pw',
    tls: { ca: server.certs.ca },
    timeouts: SHORT,
  })
}

/** Resolves with the next message the client's router hands over. */
function nextMessage(client: ReturnType<typeof alice>): Promise<Element> {
  return new Promise((resolve) => {
    const off = client.plugins.router.message({}, (msg) => {
      off()
      resolve(msg)
    })
  })
}

describe('an external component against the test server', () => {
  test('it connects with the handshake and exchanges messages with a client', async () => {
    const comp = echo()
    comp.plugins.router.message({ type: 'chat' }, async (msg) => {
      // No `from`: the component's domain is stamped on it.
      await comp.send(
        xml(
          'message',
          { to: msg.attrs.from, type: 'chat' },
          xml('body', {}, `echo: ${msg.getChildText('body')}`),
        ),
      )
    })
    await comp.connect()
    expect(comp.jid?.toString()).toBe('echo.localhost')
    expect(server.components.has('echo.localhost')).toBe(true)
    const client = alice()
    await client.connect()
    try {
      const answer = nextMessage(client)
      await client.send(
        xml('message', { to: 'echo.localhost', type: 'chat' }, xml('body', {}, 'hi')),
      )
      const msg = await answer
      expect(msg.attrs.from).toBe('echo.localhost')
      expect(msg.getChildText('body')).toBe('echo: hi')
      // What the server got from the component: `from` stamped, `to` the client's full JID.
      const sent = server.components.get('echo.localhost')?.received.at(-1)
      expect(sent?.attrs).toMatchObject({ from: 'echo.localhost', to: 'alice@localhost/desk' })
    } finally {
      await client.disconnect()
      await comp.disconnect()
    }
  })

  test('a client plugin that only touches stanzas (XEP-0199 ping) works on both sides, and iq requests cross', async () => {
    const comp = echo()
    await comp.connect()
    const client = alice()
    await client.connect()
    try {
      // The client pings the component: the ping plugin answers there unchanged.
      await client.plugins.ping.ping('echo.localhost')
      const answer = server.components.get('echo.localhost')?.received.at(-1)
      expect(answer?.attrs).toMatchObject({
        type: 'result',
        from: 'echo.localhost',
        to: String(client.jid),
      })
      // The component pings the client's full JID and gets its result.
      const result = await comp.plugins.iq.request(
        xml('iq', { type: 'get', to: String(client.jid) }, xml('ping', { xmlns: 'urn:xmpp:ping' })),
      )
      expect(result.attrs).toMatchObject({
        type: 'result',
        from: String(client.jid),
        to: 'echo.localhost',
      })
    } finally {
      await client.disconnect()
      await comp.disconnect()
    }
  })

  test('a wrong secret: StreamError not-authorized, and the secret never shows in the packet log', async () => {
    const log: string[] = []
    const comp = echo({ secret: 'not the secret', log })
    const error = await comp.connect().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(StreamError)
    expect(error).toMatchObject({ condition: 'not-authorized', remote: true })
    expect(comp.state).toBe('disconnected')
    await server.waitFor('component', (e) => e.outcome === 'not-authorized')
    const text = log.join('\n')
    expect(text).toContain('handshake')
    expect(text).not.toContain('not the secret')
    // The handshake's digest is redacted too.
    expect(text).not.toMatch(/[0-9a-f]{40}/)
    await comp.dispose()
  })

  test('a second component under a connected name: StreamError conflict', async () => {
    const first = echo({ domain: 'other.localhost', secret: 'other-secret' })
    await first.connect()
    const second = echo({ domain: 'other.localhost', secret: 'other-secret' })
    try {
      await expect(second.connect()).rejects.toMatchObject({
        name: 'StreamError',
        condition: 'conflict',
      })
      expect(first.state).toBe('online')
    } finally {
      await first.disconnect()
      await second.dispose()
    }
  })

  test('a name the server does not serve: StreamError host-unknown', async () => {
    const comp = echo({ domain: 'nobody.localhost' })
    await expect(comp.connect()).rejects.toMatchObject({
      name: 'StreamError',
      condition: 'host-unknown',
    })
    await comp.dispose()
  })

  test('addressing: a `from` outside the domain or a missing `to` is refused before it is written', async () => {
    const comp = echo()
    await comp.connect()
    const before = server.components.get('echo.localhost')?.received.length ?? 0
    try {
      const outside = await comp
        .send(
          xml(
            'message',
            { from: 'bot@elsewhere.example', to: 'alice@localhost' },
            xml('body', {}, 'x'),
          ),
        )
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      expect(outside).toBeInstanceOf(ComponentError)
      expect(outside).toMatchObject({ code: 'from-outside-domain' })
      await expect(comp.send(xml('message', { from: 'echo.localhost' }))).rejects.toMatchObject({
        code: 'missing-to',
      })
      // Any local part and resource in the domain are fine.
      await comp.send(xml('message', { from: 'bot@echo.localhost/r1', to: 'alice@localhost' }))
      const component = server.components.get('echo.localhost')
      await expect.poll(() => component?.received.length).toBe(before + 1)
      expect(component?.received.at(-1)?.attrs.from).toBe('bot@echo.localhost/r1')
      expect(comp.state).toBe('online')
    } finally {
      await comp.disconnect()
    }
  })

  test('no secret given: the connection is not created (the plugin setup fails with ComponentError no-secret)', () => {
    let thrown: unknown
    try {
      echo({ secret: '' })
    } catch (error) {
      thrown = error
    }
    expect(thrown).toMatchObject({ name: 'PluginError', code: 'setup-failed' })
    expect((thrown as Error).cause).toBeInstanceOf(ComponentError)
    expect((thrown as Error).cause).toMatchObject({ code: 'no-secret' })
  })
})

test('a server that sends no stream id: ComponentError no-stream-id, nothing hashed or sent', async () => {
  const received: string[] = []
  const raw = createServer((socket) => {
    socket.on('data', (chunk) => {
      received.push(chunk.toString())
      if (received.length === 1) {
        socket.write(
          "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' from='echo.localhost'>",
        )
      }
    })
  })
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve))
  const address = raw.address()
  const port = typeof address === 'object' && address ? address.port : 0
  const comp = createConnection({
    transport: tcp({ allowPlaintext: true }),
    domain: 'echo.localhost',
    service: `xmpp://127.0.0.1:${port}`,
    timeouts: SHORT,
    plugins: [component.with({ secret: SECRET })],
  })
  try {
    await expect(comp.connect()).rejects.toMatchObject({
      name: 'ComponentError',
      code: 'no-stream-id',
    })
    expect(received.join('')).not.toContain('<handshake')
  } finally {
    await comp.dispose()
    raw.close()
  }
})
