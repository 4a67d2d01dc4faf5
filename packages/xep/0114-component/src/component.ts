import { createHash } from 'node:crypto'
import {
  type Connection,
  definePlugin,
  type NegotiationContext,
  type Negotiator,
  type OutboundContext,
} from '@core/connection'
import { XMPPError } from '@core/errors'
import { JID } from '@core/jid'
import { Element, NS_STREAM, xml } from '@core/xml'

/** XEP-0114 §3: the content namespace of a component's stream to its server. */
export const NS_COMPONENT = 'jabber:component:accept'

export interface ComponentOptions {
  /**
   * The secret shared with the server (Prosody's `component_secret`). Only its hash with the
   * stream id goes on the wire; it is never logged.
   */
  secret: string
}

/** What the component plugin gives the app: the address it serves. */
export interface ComponentApi {
  /** The component's domain: every stanza it sends comes from this domain. */
  readonly domain: JID
}

export type ComponentErrorCode =
  /** The server's stream header had no `id`: there is nothing to hash the secret with. */
  | 'no-stream-id'
  /** No secret was given. */
  | 'no-secret'
  /** A stanza's `from` is not in the component's domain (the server would end the stream). */
  | 'from-outside-domain'
  /** A stanza without `to`: a component addresses every stanza. */
  | 'missing-to'
  /** A `from` or `to` that is not a valid JID. */
  | 'invalid-address'

/**
 * A component's own failures, found before anything is sent. The server's refusals arrive as
 * StreamError: `not-authorized` (wrong secret), `conflict` (the name is connected already),
 * `host-unknown` (the server serves no such component), `invalid-namespace`.
 */
export class ComponentError extends XMPPError {
  declare readonly code: ComponentErrorCode
  constructor(code: ComponentErrorCode, message: string) {
    super(code, message)
  }
}

/**
 * External component (XEP-0114). The connection's `domain` is the component's name. The
 * stream opens in `jabber:component:accept` with no features, TLS or SASL: the component
 * proves it knows the secret with a handshake, and is then online. Outgoing stanzas get the
 * component's domain as `from` when they have none; one whose `from` lies outside it, or
 * that has no `to`, is refused with ComponentError before it is written.
 */
export const component = definePlugin({
  name: 'component',
  options: { secret: '' } as ComponentOptions,
  setup(ctx, options: ComponentOptions): ComponentApi {
    if (typeof options.secret !== 'string' || options.secret === '') {
      throw new ComponentError(
        'no-secret',
        'component() needs the shared secret: component.with({ secret })',
      )
    }
    const domain = JID.parse(ctx.connection.domain)
    if (domain.local !== '' || domain.resource !== '') {
      throw new ComponentError(
        'invalid-address',
        `a component's domain is a bare domain, not ${ctx.connection.domain}`,
      )
    }
    ctx.negotiation(new Handshake(options.secret, domain))
    ctx.outbound((out, next) => {
      if (out.kind === 'stanza' && !out.negotiation) address(out, domain)
      return next()
    })
    return { domain }
  },
})

/** XEP-0114 §3: the handshake replaces stream features. */
class Handshake implements Negotiator {
  readonly xmlns = NS_COMPONENT
  readonly #secret: string
  readonly #domain: JID

  constructor(secret: string, domain: JID) {
    this.#secret = secret
    this.#domain = domain
  }

  streamAttributes(connection: Connection): Record<string, string | undefined> {
    // XEP-0114 §3 (step 1): `to` names the component; no version, no features.
    return { to: connection.domain, xmlns: NS_COMPONENT, 'xmlns:stream': NS_STREAM }
  }

  async negotiate(nc: NegotiationContext): Promise<void> {
    const id = nc.header.id
    if (id === undefined || id === '') {
      throw new ComponentError(
        'no-stream-id',
        'the server opened the stream without an id: the handshake hashes the secret with it',
      )
    }
    // XEP-0114 §3 (step 3): lowercase hex SHA-1 of the stream id followed by the secret,
    // both as UTF-8.
    const digest = createHash('sha1')
      .update(id + this.#secret, 'utf8')
      .digest('hex')
    await nc.send(xml('handshake', {}, digest))
    // Success is an empty <handshake/>; a refusal is a stream error (not-authorized,
    // conflict, ...), which fails the wait with the StreamError.
    await nc.waitFor((element) => element.name === 'handshake')
    nc.connection.jid = this.#domain
  }
}

/**
 * XEP-0114 §3: the server checks each stanza's `from` against the component's domain and
 * ends the stream (invalid-from) otherwise; a component also addresses every stanza.
 */
function address(out: OutboundContext, domain: JID): void {
  const { from, to } = out.element.attrs as { from?: string; to?: string }
  if (to === undefined || to === '') {
    throw new ComponentError(
      'missing-to',
      `<${out.element.name}/> has no 'to': a component addresses every stanza`,
    )
  }
  if (JID.tryParse(to) === undefined) {
    throw new ComponentError('invalid-address', `<${out.element.name}/> has an invalid 'to'`)
  }
  if (from === undefined || from === '') {
    // A copy with `from`: the app's element stays as it was. Children are shared.
    const copy = new Element(out.element.name, { ...out.element.attrs, from: domain.toString() })
    copy.children = out.element.children
    out.element = copy
    return
  }
  const sender = JID.tryParse(from)
  if (sender === undefined) {
    throw new ComponentError('invalid-address', `<${out.element.name}/> has an invalid 'from'`)
  }
  if (sender.domain !== domain.domain) {
    throw new ComponentError(
      'from-outside-domain',
      `<${out.element.name}/> from ${from} is outside the component's domain ${domain}: the server would end the stream with invalid-from`,
    )
  }
}
