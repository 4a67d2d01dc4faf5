import { createConnection, definePlugin } from '@core/connection'
import { MemoryPeer } from '@test/memory-peer'
import { xml } from '@core/xml'

// A plugin with a middleware in each direction; its setup() returns its API.
const counter = definePlugin({
  name: 'counter',
  setup(ctx) {
    const counts = { in: 0, out: 0 }
    ctx.inbound((c, next) => {
      if (c.kind === 'stanza') counts.in++
      return next()
    })
    ctx.outbound(async (c, next) => {
      await next()
      if (c.queued && c.kind === 'stanza') counts.out++
    })
    return counts
  },
})

// MemoryPeer stands in for the server here; @transport/tcp connects to a real one.
const peer = new MemoryPeer()
const conn = createConnection({
  transport: peer.transport,
  domain: 'example.com',
  plugins: [counter],
})

// The catch-all hook: echo chat messages to their sender (@core/router routes by type,
// sender and payload instead).
conn.hooks.on('stanza', ({ element, name }) => {
  const body = element.getChildText('body')
  if (name !== 'message' || element.attrs.type !== 'chat' || body === null) return
  return conn.send(
    xml('message', { to: element.attrs.from, type: 'chat' }, xml('body', null, body)),
  )
})

const online = conn.connect()
await peer.nextHeader()
peer.open({ features: '' }) // the server's stream header and (empty) features
await online

peer.send("<message from='amy@example.com/a' type='chat'><body>hello</body></message>")
console.log(String(await peer.nextElement())) // <message to="amy@example.com/a" type="chat"><body>hello</body></message>
console.log(conn.plugins.counter) // { in: 1, out: 1 }
await conn.disconnect()
