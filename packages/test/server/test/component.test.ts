import { createHash } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { startTestServer, type TestServer } from '../src/index.js'

let server: TestServer
beforeAll(async () => {
  server = await startTestServer({ components: { 'bot.localhost': 's3cret' } })
})
afterAll(async () => {
  await server.close()
})

/** A raw component connection: what the server writes, as text, and a way to wait for it. */
async function raw(header: string) {
  const socket: Socket = connect(server.componentPort, server.host)
  let text = ''
  let closed = false
  socket.on('data', (chunk) => {
    text += chunk.toString()
  })
  socket.on('close', () => {
    closed = true
  })
  socket.write(header)
  await expect.poll(() => /<stream:stream[^>]*>/.test(text)).toBe(true)
  const id = /id=['"]([^'"]+)['"]/.exec(text)?.[1] ?? ''
  return { socket, id, text: () => text, closed: () => closed }
}

const HEADER = (to: string, xmlns = 'jabber:component:accept') =>
  `<stream:stream xmlns='${xmlns}' xmlns:stream='http://etherx.jabber.org/streams' to='${to}'>`
const digest = (id: string, secret: string) =>
  createHash('sha1')
    .update(id + secret, 'utf8')
    .digest('hex')

test('the handshake: SHA-1 of the stream id and the secret gets an empty <handshake/>', async () => {
  const c = await raw(HEADER('bot.localhost'))
  expect(c.id).not.toBe('')
  c.socket.write(`<handshake>${digest(c.id, 's3cret')}</handshake>`)
  await expect.poll(() => c.text()).toContain('<handshake/>')
  expect(server.components.has('bot.localhost')).toBe(true)
  c.socket.end('</stream:stream>')
  await expect.poll(() => server.components.has('bot.localhost')).toBe(false)
})

test('a wrong secret: not-authorized, and the connection closes', async () => {
  const c = await raw(HEADER('bot.localhost'))
  c.socket.write(`<handshake>${digest(c.id, 'guess')}</handshake>`)
  await expect.poll(() => c.text()).toContain('<not-authorized')
  await expect.poll(() => c.closed()).toBe(true)
  expect(server.components.has('bot.localhost')).toBe(false)
})

test('a name already connected: conflict for the second, the first stays', async () => {
  const first = await raw(HEADER('bot.localhost'))
  first.socket.write(`<handshake>${digest(first.id, 's3cret')}</handshake>`)
  await expect.poll(() => first.text()).toContain('<handshake/>')
  const second = await raw(HEADER('bot.localhost'))
  second.socket.write(`<handshake>${digest(second.id, 's3cret')}</handshake>`)
  await expect.poll(() => second.text()).toContain('<conflict')
  expect(first.closed()).toBe(false)
  first.socket.destroy()
  await expect.poll(() => server.components.has('bot.localhost')).toBe(false)
})

test('an unknown name gets host-unknown; a client namespace gets invalid-namespace', async () => {
  const unknown = await raw(HEADER('nobody.localhost'))
  await expect.poll(() => unknown.text()).toContain('<host-unknown')
  const wrongNs = await raw(HEADER('bot.localhost', 'jabber:client'))
  await expect.poll(() => wrongNs.text()).toContain('<invalid-namespace')
})

test('dropComponent() destroys the socket: the component is gone at once', async () => {
  const c = await raw(HEADER('bot.localhost'))
  c.socket.write(`<handshake>${digest(c.id, 's3cret')}</handshake>`)
  await expect.poll(() => c.text()).toContain('<handshake/>')
  server.dropComponent('bot.localhost')
  await expect.poll(() => c.closed()).toBe(true)
  expect(c.text()).not.toContain('</stream:stream>')
  expect(server.components.has('bot.localhost')).toBe(false)
})
