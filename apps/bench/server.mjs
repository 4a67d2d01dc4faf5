#!/usr/bin/env node
// The scripted loopback XMPP server of the benchmark. Raw node:net, no XMPP library: replies
// are pre-serialized strings and the input is scanned with indexOf, so that it is never the
// bottleneck. Each connection gets the minimal c2s handshake (RFC 6120 §4.3 stream header,
// §6 SASL PLAIN without TLS, §7 resource binding, optionally XEP-0198 enable), then the mode:
//
//   recv   on the client's first <presence/>, blast N pre-serialized stanzas of --shape
//          (shapes.mjs: 1,000 distinct ones, repeated; default chat, 261-byte messages)
//   send   count complete </message> from the client; after N, send one `done` message
//   rtt    answer iq pings (every mode does; this mode does nothing else)
//   idle   hold the connection open
//
// In every mode: iq get/set are answered with an empty result, <r/> with <a h='N'/> (N =
// stanzas received since online), </stream:stream> with </stream:stream> and a close.
//
//   node server.mjs --mode recv|send|rtt|idle [--n 200000] [--shape chat] [--sm] [--port 0]
//
// Prints one JSON line when listening: {"port":N}. Exits on SIGTERM or when stdin closes.

import { createServer } from 'node:net'
import { parseArgs } from 'node:util'
import { SHAPES, TO } from './shapes.mjs'

const { values: args } = parseArgs({
  options: {
    mode: { type: 'string', default: 'idle' },
    n: { type: 'string', default: '200000' },
    sm: { type: 'boolean', default: false },
    port: { type: 'string', default: '0' },
    shape: { type: 'string', default: 'chat' },
  },
})
const MODE = args.mode
const N = Number(args.n)
if (!['recv', 'send', 'rtt', 'idle'].includes(MODE) || !(N > 0) || !SHAPES[args.shape]) {
  console.error(
    `usage: server.mjs --mode recv|send|rtt|idle [--n N] [--shape ${Object.keys(SHAPES).join('|')}] [--sm] [--port P]`,
  )
  process.exit(2)
}

const DOMAIN = 'localhost'
const FULL_JID = TO
const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl'
const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind'
const NS_SM = 'urn:xmpp:sm:3'

let streamIds = 0
const header = () =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s${++streamIds}' from='${DOMAIN}' version='1.0' xml:lang='en'>`
const FEATURES_SASL = `<stream:features><mechanisms xmlns='${NS_SASL}'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`
const FEATURES_BIND = `<stream:features><bind xmlns='${NS_BIND}'/>${args.sm ? `<sm xmlns='${NS_SM}'/>` : ''}</stream:features>`
const SUCCESS = `<success xmlns='${NS_SASL}'/>`
const CLOSE = '</stream:stream>'
const DONE = `<message from='${DOMAIN}' to='${FULL_JID}' type='chat' id='done'><body>done</body></message>`

// recv: 1,000 distinct stanzas of the shape, written as one buffer N/1000 times (the same
// bytes for every client). ENDS[k] is the byte length of the first k stanzas.
const BATCH = 1000
const STANZAS = Array.from({ length: BATCH }, (_, i) => SHAPES[args.shape].build(i))
const BLAST = Buffer.from(STANZAS.join(''))
const ENDS = [0]
for (const s of STANZAS) ENDS.push(ENDS[ENDS.length - 1] + Buffer.byteLength(s))
if (args.shape === 'chat' && BLAST.length !== 261 * BATCH) {
  throw new Error('chat messages are not 261 bytes')
}

/** The value of attribute `name` in the start tag `tag` (either quote), or undefined. */
function attr(tag, name) {
  let i = tag.indexOf(` ${name}=`)
  if (i < 0) return undefined
  i += name.length + 2
  const quote = tag[i]
  const end = tag.indexOf(quote, i + 1)
  return end < 0 ? undefined : tag.slice(i + 1, end)
}

/** Resolves when the socket drains or closes. */
function drained(socket) {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done)
      socket.off('close', done)
      resolve()
    }
    socket.on('drain', done)
    socket.on('close', done)
  })
}

async function blast(socket) {
  let left = N
  while (left > 0 && !socket.destroyed) {
    const count = Math.min(left, BATCH)
    const ok = socket.write(count === BATCH ? BLAST : BLAST.subarray(0, ENDS[count]))
    left -= count
    if (!ok) await drained(socket)
  }
}

function handle(socket) {
  socket.setNoDelay(true)
  socket.setEncoding('utf8')
  let buf = ''
  let authed = false
  let online = false
  let inbound = 0 // stanzas since online (XEP-0198 h)
  let sent = 0 // send mode: messages counted
  let blasted = false

  const reply = (s) => socket.write(s)

  /** One complete top-level element (or the stream header) starting at 0 in `el`. */
  function element(name, el) {
    switch (name) {
      case 'stream:stream':
        reply(header() + (authed ? FEATURES_BIND : FEATURES_SASL))
        return
      case 'auth':
        // RFC 6120 §6.4.6: the credentials are not checked, this is a benchmark.
        authed = true
        reply(SUCCESS)
        return
      case 'message':
        if (!online) return
        inbound++
        if (MODE === 'send' && ++sent === N) {
          sent = 0
          reply(DONE)
        }
        return
      case 'presence':
        if (!online) return
        inbound++
        if (MODE === 'recv' && !blasted) {
          blasted = true
          blast(socket).catch((err) => {
            process.stderr.write(`server: blast failed: ${err.stack ?? err}\n`)
            socket.destroy()
          })
        }
        return
      case 'iq': {
        if (online) inbound++
        const type = attr(el, 'type')
        if (type !== 'get' && type !== 'set') return
        const id = attr(el, 'id') ?? ''
        if (el.includes(NS_BIND)) {
          online = true
          reply(
            `<iq type='result' id='${id}'><bind xmlns='${NS_BIND}'><jid>${FULL_JID}</jid></bind></iq>`,
          )
          return
        }
        const to = attr(el, 'to')
        reply(`<iq type='result' id='${id}'${to === undefined ? '' : ` from='${to}'`}/>`)
        return
      }
      case 'enable':
        inbound = 0
        reply(`<enabled xmlns='${NS_SM}' id='sm1'/>`)
        return
      case 'r':
        reply(`<a xmlns='${NS_SM}' h='${inbound}'/>`)
        return
      default:
        return
    }
  }

  /** Consumes every complete element in `buf`; keeps an incomplete tail. */
  function scan() {
    let pos = 0
    for (;;) {
      const lt = buf.indexOf('<', pos)
      if (lt < 0) {
        pos = buf.length
        break
      }
      const gt = buf.indexOf('>', lt)
      if (gt < 0) {
        pos = lt
        break
      }
      if (buf[lt + 1] === '?') {
        pos = gt + 1 // the XML declaration
        continue
      }
      if (buf.startsWith(CLOSE, lt)) {
        socket.end(CLOSE)
        buf = ''
        return
      }
      let nameEnd = lt + 1
      while (nameEnd < gt) {
        const c = buf.charCodeAt(nameEnd)
        if (c === 32 || c === 47 || c === 9 || c === 10 || c === 13) break // space / tab nl cr
        nameEnd++
      }
      const name = buf.slice(lt + 1, nameEnd)
      let end
      if (name === 'stream:stream' || buf[gt - 1] === '/') {
        end = gt + 1 // the stream header is an open tag; others are empty elements
      } else {
        const close = buf.indexOf(`</${name}>`, gt)
        if (close < 0) {
          pos = lt
          break
        }
        end = close + name.length + 3
      }
      // Only iq, auth and the header need their text; others are told apart by name.
      element(name, name === 'iq' || name === 'stream:stream' ? buf.slice(lt, end) : '')
      pos = end
    }
    buf = pos >= buf.length ? '' : buf.slice(pos)
  }

  socket.on('data', (chunk) => {
    buf = buf.length === 0 ? chunk : buf + chunk
    scan()
  })
  socket.on('error', (err) => {
    // A client process that exits without closing its stream (idle) resets the connection:
    // expected here. Anything else is reported.
    if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') {
      process.stderr.write(`server: ${err.stack ?? err}\n`)
    }
    socket.destroy()
  })
}

const sockets = new Set()
const server = createServer((socket) => {
  sockets.add(socket)
  socket.on('close', () => sockets.delete(socket))
  handle(socket)
})
server.listen(Number(args.port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`)
})
function stop() {
  server.close()
  for (const s of sockets) s.destroy()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.stdin.on('end', stop)
process.stdin.resume()
