#!/usr/bin/env node
// Peak heap while a peer floods large stanzas at a client whose handler is slow.
//
//   node inbound-backlog.mjs [--count 40] [--size-mib 1] [--handler-ms 100] [--limit-bytes N]
//
// A loopback server opens the stream, offers no features (so the client is online at once)
// and writes --count messages of --size-mib each as fast as the socket takes them. The
// client's only message handler waits --handler-ms per message. The connection pauses its
// transport once the unread backlog passes --limit-bytes (the core's inboundHighWaterBytes,
// default 1 MiB); with --limit-bytes Infinity it never pauses, which shows what the bound
// prevents. Prints one JSON line: peak heapUsed and peak RSS over the run (sampled every 5 ms
// and after each handled message), and the handled count.

import net from 'node:net'
import { parseArgs } from 'node:util'
import { createConnection, definePlugin } from '@core/connection'

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '40' },
    'size-mib': { type: 'string', default: '1' },
    'handler-ms': { type: 'string', default: '100' },
    'limit-bytes': { type: 'string', default: String(1024 * 1024) },
  },
})
const count = Number(args.count)
const size = Math.round(Number(args['size-mib']) * 1024 * 1024)
const handlerMs = Number(args['handler-ms'])
const limit = Number(args['limit-bytes'])

const body = 'x'.repeat(size)
const server = net.createServer((socket) => {
  socket.once('data', () => {
    socket.write(
      "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " +
        "xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='s1' version='1.0'>" +
        '<stream:features/>',
    )
    let i = 0
    const more = () => {
      while (i < count) {
        const ok = socket.write(
          `<message from='a@localhost' id='m${i}'><body>${body}</body></message>`,
        )
        i++
        if (!ok) return socket.once('drain', more)
      }
    }
    setTimeout(more, 20)
  })
  socket.on('error', () => socket.destroy())
})
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
const { port } = server.address()

/** The smallest byte-stream transport over node:net (plaintext loopback, for this script only). */
function loopback() {
  let socket
  return {
    secure: false,
    connect(_target, events) {
      return new Promise((resolve, reject) => {
        socket = net.connect(port, '127.0.0.1', resolve)
        socket.once('error', reject)
        socket.on('data', (chunk) => events.data(chunk))
        socket.on('close', () => events.close())
        socket.on('drain', () => events.drain())
      })
    },
    write: (data) => socket.write(data),
    end: () => socket.end(),
    destroy: () => socket.destroy(),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
  }
}

let handled = 0
let peakHeap = 0
let peakRss = 0
const sample = () => {
  const m = process.memoryUsage()
  if (m.heapUsed > peakHeap) peakHeap = m.heapUsed
  if (m.rss > peakRss) peakRss = m.rss
}
const sampler = setInterval(sample, 5)
let done
const finished = new Promise((resolve) => {
  done = resolve
})
const slow = definePlugin({
  name: 'slow-handler',
  setup(ctx) {
    ctx.inbound(async (c, next) => {
      if (c.name !== 'message') return next()
      c.handled = true
      await new Promise((resolve) => setTimeout(resolve, handlerMs))
      sample()
      if (++handled === count) done()
    })
  },
})

const conn = createConnection({
  transport: loopback,
  domain: 'localhost',
  plugins: [slow],
  inboundHighWaterBytes: limit,
  limits: { maxStanzaSize: size + 4096 },
})
const started = performance.now()
await conn.connect()
await finished
clearInterval(sampler)
await conn.dispose()
server.close()
const mib = (n) => Math.round((n / 1024 / 1024) * 10) / 10
console.log(
  JSON.stringify({
    count,
    sizeMiB: size / 1024 / 1024,
    handlerMs,
    limitBytes: limit,
    handled,
    peakHeapMiB: mib(peakHeap),
    peakRssMiB: mib(peakRss),
    seconds: Math.round(performance.now() - started) / 1000,
  }),
)
