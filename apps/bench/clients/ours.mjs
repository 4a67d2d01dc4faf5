// This project's client, used the way an app author would: createClient() from the preset,
// a router handler for chat messages, send() of built elements, ping() for the round trip.
import { createClient } from '@client/preset'
import { memoryScramCache } from '@client/sasl'
import { xml } from '@core/xml'
import { sm } from '@xep/0198-sm'

/** Stream management pacing (below): pause at SM_HIGH unacknowledged stanzas, go on under SM_LOW. */
const SM_HIGH = 2_000
const SM_LOW = 1_000

/** The app's SCRAM cache, seeded once per process with the salted password it was given. */
let scramCache

/** @param {import('./types.mjs').ClientConfig} config */
export function create(config) {
  if (config.scramCache && !scramCache) {
    const { salt, saltedPassword, iterations } = config.scramCache
    scramCache = memoryScramCache()
    const key = {
      mechanism: config.mechanism,
      username: config.jid.split('@')[0],
      salt: Buffer.from(salt).toString('base64'),
      iterations,
    }
    scramCache.set(key, config.password, saltedPassword)
  }
  const client = createClient({
    jid: config.jid,
    password: config.password,
    service: config.service,
    mechanisms: [config.mechanism],
    ...(config.scramCache ? { scramCache } : {}),
    ...(config.plaintext ? { allowPlaintext: true } : { tls: { insecure: true } }),
    ...(config.sm ? { plugins: [sm] } : {}),
  })
  const recv = config.recv
  if (recv) {
    const { router } = client.plugins
    if (recv.route === 'chat' || recv.route === 'groupchat') {
      router.message({ type: recv.route, child: 'body' }, recv.handle)
    } else if (recv.route === 'presence') {
      router.presence(recv.handle)
    } else if (recv.route === 'iq-result') {
      // An iq result no request waits for ends at the app's catch-all.
      client.hooks.on('stanza', ({ element, name }) => {
        if (name === 'iq' && element.attrs.type === 'result') recv.handle(element)
      })
    } else throw new Error(`unknown route ${recv.route}`)
  }
  if (config.onMessage) {
    const onMessage = config.onMessage
    client.plugins.router.message({ type: 'chat', child: 'body' }, (msg) => {
      onMessage(msg.attrs.id, msg.getChildText('body'))
    })
  }
  // With stream management, every stanza stays queued until the server acknowledged it, and
  // the queue is bounded (queueLimit, 10,000 by default: past it send() rejects queue-full).
  // An app that streams many stanzas keeps within it by pausing at a high-water mark of
  // unacknowledged stanzas (SM_HIGH) until acks bring them under SM_LOW, as this one does with
  // sm.whenBelow() (which asks for an ack unless one is on its way). Pausing until everything
  // is acked (allAcked()) would stop the pipe every time.
  const smApi = config.sm ? client.plugins.sm : undefined
  /** The pause in progress: every sender past the mark waits on the same one. */
  let room
  const roomMade = () => {
    room = undefined
  }
  const message = (to, body) =>
    client.send(xml('message', { to, type: 'chat' }, xml('body', null, body)))
  // `paced` (sm.mjs's control row, SM off): the same pauses without stream management, one
  // round trip every SM_HIGH messages (each pause above ends with an <a/> that acknowledges
  // about everything sent, so it comes every SM_HIGH messages): a ping, which the server
  // answers after the messages before it, as it answers the <r/>.
  let sent = 0
  return {
    connect: () => client.connect(),
    presence: () => client.send(xml('presence')),
    message: smApi
      ? (to, body) => {
          if (smApi.pending < SM_HIGH) return message(to, body)
          room ??= smApi.whenBelow(SM_LOW).then(roomMade)
          return room.then(() => message(to, body))
        }
      : config.paced
        ? (to, body) => {
            if (room) return room.then(() => message(to, body))
            if (++sent % SM_HIGH === 0) room = client.plugins.ping.ping().then(roomMade)
            return message(to, body)
          }
        : message,
    ping: () => client.plugins.ping.ping(),
    close: () => client.disconnect(),
  }
}
