import { createConnection } from '@core/connection'
import { iq } from '@core/iq'
import { packetLog } from '@core/packet-log'
import { router } from '@core/router'
import { xml } from '@core/xml'
import { tcp } from '@transport/tcp'
import { component } from '@xep/0114-component'

export interface EchoOptions {
  /** `xmpp://HOST:PORT`: the server's component port. */
  service: string
  /** The component's domain, e.g. `echo.example.com`. */
  domain: string
  secret: string
  debug?: ((line: string) => void) | undefined
}

/**
 * An external component (XEP-0114) that answers every message with a body by echoing it
 * back, prefixed with `echo: `.
 */
export function echoComponent(options: EchoOptions) {
  const conn = createConnection({
    // XEP-0114 streams have no TLS.
    transport: tcp({ allowPlaintext: true }),
    domain: options.domain,
    service: options.service,
    plugins: [
      component.with({ secret: options.secret }),
      iq,
      router,
      packetLog.with({
        enabled: options.debug !== undefined,
        ...(options.debug ? { write: options.debug } : {}),
      }),
    ],
  })
  conn.plugins.router.message({ child: 'body' }, async (msg) => {
    const reply = xml(
      'message',
      { to: msg.attrs.from, type: msg.attrs.type, id: msg.attrs.id },
      xml('body', {}, `echo: ${msg.getChildText('body')}`),
    )
    await conn.send(reply)
  })
  return conn
}
