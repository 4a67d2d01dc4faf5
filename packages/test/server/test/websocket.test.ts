// The WebSocket front (RFC 7395): the server's sessions behind the framing.
import { afterAll, beforeAll, expect, test } from 'vitest'
import { WebSocket } from 'ws'
import { startTestServer, type TestServer, TestServerError } from '../src/index.js'

const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing'
let server: TestServer
beforeAll(async () => {
  server = await startTestServer({ users: { juliet: 'r0m30' }, tls: false, websocket: true })
})
afterAll(async () => {
  await server.close()
})

function messages(ws: WebSocket): () => Promise<string> {
  const queue: string[] = []
  const waiting: ((m: string) => void)[] = []
  ws.on('message', (data) => {
    const text = data.toString()
    const next = waiting.shift()
    if (next) next(text)
    else queue.push(text)
  })
  return () => {
    const ready = queue.shift()
    return ready !== undefined
      ? Promise.resolve(ready)
      : new Promise((resolve) => {
          waiting.push(resolve)
        })
  }
}

test('<open/> is answered with <open/> and the features, one message each, namespaces declared', async () => {
  expect(server.websocketUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/xmpp-websocket$/)
  const ws = new WebSocket(server.websocketUrl as string, ['xmpp'])
  const next = messages(ws)
  await new Promise((resolve) => ws.once('open', resolve))
  expect(ws.protocol).toBe('xmpp')
  ws.send(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`)
  expect(await next()).toMatch(new RegExp(`^<open xmlns='${FRAMING}' .*from='localhost'.*/>$`))
  const features = await next()
  expect(features).toMatch(
    /^<stream:features xmlns:stream="http:\/\/etherx\.jabber\.org\/streams">.*<mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl">/,
  )
  ws.send(`<close xmlns='${FRAMING}'/>`)
  expect(await next()).toBe(`<close xmlns='${FRAMING}'/>`)
  await new Promise((resolve) => ws.once('close', resolve))
  // The session behind it is the server's own.
  expect(server.sessions.at(-1)?.closed).toBe(true)
})

test('a client that does not offer the xmpp subprotocol is refused', async () => {
  const ws = new WebSocket(server.websocketUrl as string, ['chat'])
  const error = await new Promise<Error>((resolve) => ws.once('error', resolve))
  expect(error.message).toMatch(/subprotocol/)
})

test('websocket with requireTls is a misuse', async () => {
  await expect(startTestServer({ websocket: true })).rejects.toBeInstanceOf(TestServerError)
})
