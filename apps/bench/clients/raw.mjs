// The raw-socket baseline: node:net, the same handshake and the same iq ping bytes as a client
// would send, pre-formatted, with a substring check for the answer. No XML parsing at all.
// rtt: what is left of a client's round trip is the socket and the server.
// idle: connect() leaves one net.Socket (utf8, no Nagle) online with one 'data' listener and
// an empty buffer: what a connected client costs before any library state.
import { connect as netConnect } from 'node:net'

/** @param {import('./types.mjs').ClientConfig} config */
export function create(config) {
  const url = new URL(config.service)
  const [username, domain] = config.jid.split('@')
  /** @type {import('node:net').Socket} */
  let socket
  let buf = ''
  /** @type {((s: string) => boolean) | undefined} */
  let want
  /** @type {(() => void) | undefined} */
  let wake
  let ids = 0

  const until = (test) =>
    new Promise((resolve) => {
      if (test(buf)) {
        buf = ''
        resolve()
        return
      }
      want = test
      wake = resolve
    })
  const open = `<?xml version='1.0'?><stream:stream to='${domain}' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`

  return {
    async connect() {
      socket = netConnect(Number(url.port), url.hostname)
      socket.setNoDelay(true)
      socket.setEncoding('utf8')
      socket.on('data', (chunk) => {
        buf += chunk
        if (want?.(buf)) {
          buf = ''
          const w = wake
          want = wake = undefined
          w?.()
        }
      })
      await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject))
      socket.write(open)
      await until((s) => s.includes('</stream:features>'))
      const auth = Buffer.from(`\0${username}\0${config.password}`).toString('base64')
      socket.write(
        `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${auth}</auth>`,
      )
      await until((s) => s.includes('<success'))
      socket.write(open)
      await until((s) => s.includes('</stream:features>'))
      socket.write("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
      await until((s) => s.includes('</iq>'))
    },
    presence: () => Promise.resolve(socket.write('<presence/>')),
    message: (to, body) =>
      Promise.resolve(
        socket.write(`<message to='${to}' type='chat'><body>${body}</body></message>`),
      ),
    ping() {
      const id = `p${++ids}`
      const answer = `id='${id}'`
      socket.write(`<iq type='get' id='${id}' to='${domain}'><ping xmlns='urn:xmpp:ping'/></iq>`)
      return until((s) => s.includes(answer) && s.endsWith('/>'))
    },
    async close() {
      socket.write('</stream:stream>')
      await until((s) => s.includes('</stream:stream>'))
      socket.destroy()
    },
  }
}
