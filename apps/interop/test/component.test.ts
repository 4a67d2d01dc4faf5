import { createConnection } from '@core/connection'
import { StreamError } from '@core/errors'
import { iq } from '@core/iq'
import { router } from '@core/router'
import { type Element, xml } from '@core/xml'
import { tcp } from '@transport/tcp'
import { component } from '@xep/0114-component'
import { afterEach, describe, expect, test } from 'vitest'
import { newClient, prosody, server } from './prosody.js'

const open: { dispose(): Promise<void> }[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.dispose()))
})

/** The component of Prosody's `Component` block, answering every chat message with an echo. */
function echoComponent(secret = server().component.secret) {
  const s = server()
  const conn = createConnection({
    transport: tcp({ allowPlaintext: true }),
    domain: s.component.domain,
    service: `xmpp://${s.host}:${s.component.port}`,
    timeouts: { connect: 3000, negotiation: 3000, close: 1000 },
    plugins: [component.with({ secret }), iq, router],
  })
  conn.plugins.router.message({ type: 'chat', child: 'body' }, async (msg) => {
    await conn.send(
      xml(
        'message',
        { to: msg.attrs.from, type: 'chat' },
        xml('body', {}, `echo: ${msg.getChildText('body')}`),
      ),
    )
  })
  open.push(conn)
  return conn
}

describe.skipIf(!prosody)('an external component (XEP-0114) against Prosody', () => {
  test('it connects; a client’s message to it is echoed from its domain; its iq to the client gets a result', async () => {
    const s = server()
    const comp = echoComponent()
    await comp.connect()
    expect(comp.jid?.toString()).toBe(s.component.domain)
    const client = newClient('alice', { resource: 'component' })
    await client.connect()
    const echoed = new Promise<Element>((resolve) => {
      const off = client.plugins.router.message({ type: 'chat', child: 'body' }, (msg) => {
        off()
        resolve(msg)
      })
    })
    await client.send(
      xml('message', { to: s.component.domain, type: 'chat' }, xml('body', {}, 'hello')),
    )
    const msg = await echoed
    expect(msg.attrs.from).toBe(s.component.domain)
    expect(msg.getChildText('body')).toBe('echo: hello')
    // An iq from the component to the client's full JID: the client's ping plugin answers.
    const result = await comp.plugins.iq.request(
      xml('iq', { type: 'get', to: String(client.jid) }, xml('ping', { xmlns: 'urn:xmpp:ping' })),
    )
    expect(result.attrs).toMatchObject({ type: 'result', from: String(client.jid) })
  })

  test('a wrong secret: StreamError not-authorized from Prosody, one attempt only', async () => {
    const comp = echoComponent('not-the-secret')
    let attempts = 0
    comp.hooks.on('state', ({ state }) => {
      if (state === 'connecting') attempts++
    })
    const error = await comp.connect().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(StreamError)
    expect(error).toMatchObject({ condition: 'not-authorized', remote: true })
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(attempts).toBe(1)
    expect(comp.state).toBe('disconnected')
  })

  test('a second component under the same name: StreamError conflict, the first stays online', async () => {
    const first = echoComponent()
    await first.connect()
    const second = echoComponent()
    await expect(second.connect()).rejects.toMatchObject({
      name: 'StreamError',
      condition: 'conflict',
    })
    expect(first.state).toBe('online')
  })
})
