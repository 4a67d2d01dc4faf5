import { type Connection, definePlugin } from '@core/connection'
import { iq, type IqApi } from '@core/iq'
import type { JID } from '@core/jid'
import { router } from '@core/router'
import { xml } from '@core/xml'

export const NS_PING = 'urn:xmpp:ping'

export interface PingOptions {
  /** Milliseconds before ping() fails with TimeoutError. Default 10 s. */
  timeout?: number
  signal?: AbortSignal
}

export interface PingApi {
  /**
   * XEP-0199 §4.1/§4.2: pings `to` (default: our server) and resolves with the round-trip
   * time in milliseconds. A `service-unavailable` or `feature-not-implemented` answer
   * still proves the entity is there (§4.1), so it resolves too; other errors reject with
   * the StanzaError.
   */
  ping(to?: string | JID, options?: PingOptions): Promise<number>
}

/** XMPP Ping (XEP-0199): answers pings addressed to us, and sends them. */
export const ping = definePlugin({
  name: 'ping',
  dependencies: [iq, router],
  setup(ctx): PingApi {
    // XEP-0199 §4: answer a ping with an empty result.
    ctx.get(router).iq('get', NS_PING, pong, 'ping')
    return new Pinger(ctx.connection, ctx.get(iq))
  },
})

/** The answer to a ping: an empty result. One function for every connection. */
const pong = (): undefined => undefined

/**
 * The plugin's API. A class rather than an object literal with a closure: the method lives
 * on the prototype and the connection and the iq API in fields (idle connections add up).
 * Call it on the API: `conn.plugins.ping.ping()`.
 */
class Pinger implements PingApi {
  readonly #connection: Connection
  readonly #iq: IqApi

  constructor(connection: Connection, requests: IqApi) {
    this.#connection = connection
    this.#iq = requests
  }

  async ping(to?: string | JID, options: PingOptions = {}): Promise<number> {
    const started = performance.now()
    const request = xml(
      'iq',
      { type: 'get', to: to === undefined ? this.#connection.domain : String(to) },
      xml('ping', { xmlns: NS_PING }),
    )
    try {
      await this.#iq.request(request, {
        timeout: options.timeout ?? 10_000,
        ...(options.signal ? { signal: options.signal } : {}),
      })
    } catch (error) {
      const condition = (error as { condition?: string }).condition
      const proves = condition === 'service-unavailable' || condition === 'feature-not-implemented'
      if ((error as { code?: string }).code !== 'stanza-error' || !proves) throw error
    }
    return performance.now() - started
  }
}
