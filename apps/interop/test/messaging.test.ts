import type { Message } from '@core/connection'
import { xml } from '@core/xml'
import { describe, expect, test } from 'vitest'
import { type Client, newClient, prosody, server } from './prosody.js'

/** The next chat message with a body that `client` receives. */
function nextChat(client: Client, timeoutMs = 5000): Promise<Message> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`no chat message within ${timeoutMs} ms`))
    }, timeoutMs)
    const off = client.plugins.router.message({ type: 'chat', child: 'body' }, (msg: Message) => {
      clearTimeout(timer)
      off()
      resolve(msg)
    })
  })
}

describe.skipIf(!prosody)('stanzas through Prosody', () => {
  test('a message to one’s own bare JID comes back after initial presence', async () => {
    const s = server()
    const client = newClient('alice', { resource: 'self' })
    await client.connect()
    // RFC 6121 §8.5.3.1: a message to the bare JID goes to available resources only.
    await client.send(xml('presence'))
    const received = nextChat(client)
    await client.send(
      xml(
        'message',
        { to: `alice@${s.domain}`, type: 'chat', id: 'self-1' },
        xml('body', null, 'note to self'),
      ),
    )
    const msg = await received
    expect(msg.getChildText('body')).toBe('note to self')
    expect(msg.attrs.from).toBe(`alice@${s.domain}/self`)
    expect(msg.attrs.id).toBe('self-1')
  })

  test('XEP-0199 ping to the server: a round trip', async () => {
    const client = newClient('alice', { resource: 'ping' })
    await client.connect()
    const started = performance.now()
    await client.plugins.ping.ping()
    await client.plugins.ping.ping()
    expect(performance.now() - started).toBeLessThan(5000)
  })

  test('alice and bob exchange messages both ways', async () => {
    const s = server()
    const alice = newClient('alice', { resource: 'a1' })
    const bob = newClient('bob', { resource: 'b1' })
    await Promise.all([alice.connect(), bob.connect()])
    await Promise.all([alice.send(xml('presence')), bob.send(xml('presence'))])

    // alice -> bob's full JID
    const atBob = nextChat(bob)
    await alice.send(
      xml('message', { to: `bob@${s.domain}/b1`, type: 'chat' }, xml('body', null, 'hi bob')),
    )
    const first = await atBob
    expect(first.getChildText('body')).toBe('hi bob')
    expect(first.attrs.from).toBe(`alice@${s.domain}/a1`)

    // bob answers the sender
    const atAlice = nextChat(alice)
    await bob.send(
      xml('message', { to: first.attrs.from, type: 'chat' }, xml('body', null, 'hi alice')),
    )
    const reply = await atAlice
    expect(reply.getChildText('body')).toBe('hi alice')
    expect(reply.attrs.from).toBe(`bob@${s.domain}/b1`)
    expect(reply.attrs.to).toBe(`alice@${s.domain}/a1`)
  })
})
