// This project's client, used the way an app author would: createClient() from the preset,
// a router handler for chat messages, send() of built elements, ping() for the round trip.
import { createClient } from '@client/preset'
import { xml } from '@core/connection'

/** @param {import('./types.mjs').ClientConfig} config */
export function create(config) {
  const client = createClient({
    jid: config.jid,
    password: config.password,
    service: config.service,
    mechanisms: [config.mechanism],
    ...(config.plaintext ? { allowPlaintext: true } : { tls: { insecure: true } }),
  })
  if (config.onMessage) {
    const onMessage = config.onMessage
    client.plugins.router.message({ type: 'chat', child: 'body' }, (msg) => {
      onMessage(msg.attrs.id, msg.getChildText('body'))
    })
  }
  return {
    connect: () => client.connect(),
    presence: () => client.send(xml('presence')),
    message: (to, body) =>
      client.send(xml('message', { to, type: 'chat' }, xml('body', null, body))),
    ping: () => client.plugins.ping.ping(),
    close: () => client.disconnect(),
  }
}
