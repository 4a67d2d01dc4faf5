// @xmpp/client 0.14, used the way its README shows: client(), the `stanza` event, send() of
// ltx elements, iqCaller.request() for the ping. Reconnection is stopped by stop().
import { client, xml } from '@xmpp/client'

const NS_PING = 'urn:xmpp:ping'

/** @param {import('./types.mjs').ClientConfig} config */
export function create(config) {
  const domain = config.jid.split('@')[1]
  const username = config.jid.split('@')[0]
  const xmpp = client({
    service: config.service,
    domain,
    ...(config.plaintext
      ? {
          // xmpp.js picks PLAIN only on a secure stream; with a credentials function the app
          // picks the mechanism itself: that is how it uses PLAIN on the plaintext loopback.
          credentials: (authenticate, mechanisms) => {
            if (!mechanisms.includes(config.mechanism)) {
              throw new Error(`${config.mechanism} not offered (${mechanisms.join(', ')})`)
            }
            return authenticate({ username, password: config.password }, config.mechanism)
          },
        }
      : config.scramCache
        ? {
            // An app that cached SCRAM's salted password: the mechanism skips PBKDF2 when the
            // salt it is given is the server's.
            credentials: (authenticate, mechanisms) => {
              if (!mechanisms.includes(config.mechanism)) {
                throw new Error(`${config.mechanism} not offered (${mechanisms.join(', ')})`)
              }
              return authenticate(
                { username, password: config.password, ...config.scramCache },
                config.mechanism,
              )
            },
          }
        : // Over TLS it picks its first mechanism the server offers: SCRAM-SHA-1 on Prosody.
          { username, password: config.password }),
  })
  xmpp.on('error', (err) => {
    process.stderr.write(`xmpp.js error: ${err.stack ?? err}\n`)
  })
  const recv = config.recv
  if (recv) {
    const { route, handle } = recv
    const test =
      route === 'chat' || route === 'groupchat'
        ? (s) => s.is('message') && s.attrs.type === route && s.getChild('body') !== undefined
        : route === 'presence'
          ? (s) => s.is('presence')
          : route === 'iq-result'
            ? (s) => s.is('iq') && s.attrs.type === 'result'
            : undefined
    if (!test) throw new Error(`unknown route ${route}`)
    xmpp.on('stanza', (stanza) => {
      if (test(stanza)) handle(stanza)
    })
  }
  if (config.onMessage) {
    const onMessage = config.onMessage
    xmpp.on('stanza', (stanza) => {
      if (stanza.is('message') && stanza.attrs.type === 'chat' && stanza.getChild('body')) {
        onMessage(stanza.attrs.id, stanza.getChildText('body'))
      }
    })
  }
  return {
    connect: () => xmpp.start(),
    presence: () => xmpp.send(xml('presence')),
    message: (to, body) => xmpp.send(xml('message', { to, type: 'chat' }, xml('body', {}, body))),
    ping: () =>
      xmpp.iqCaller.request(
        xml('iq', { type: 'get', to: domain }, xml('ping', { xmlns: NS_PING })),
      ),
    close: () => xmpp.stop(),
  }
}
