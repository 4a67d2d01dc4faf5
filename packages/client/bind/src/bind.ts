import {
  definePlugin,
  FeaturePriority,
  type NegotiationContext,
  type StreamFeature,
} from '@core/connection'
import { JID } from '@core/jid'
import { JIDError, TimeoutError } from '@core/errors'
import { xml } from '@core/xml'
import { BindError, stanzaErrorOf } from './errors.js'

/** RFC 6120 §7. */
export const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind'
/** RFC 3921 §3 (dropped by RFC 6121, still offered by some servers). */
export const NS_SESSION = 'urn:ietf:params:xml:ns:xmpp-session'

type Element = ReturnType<typeof xml>

export interface BindOptions {
  /** The resource to ask for; the server may assign another one. Default: the server picks. */
  resource?: string | undefined
  /**
   * The account the bound JID must belong to: a bare JID (`juliet@example.com`), or a domain
   * for an account without a local part (only the domain is then checked). Default: the
   * identity the authentication feature logged in as (`@client/sasl` sets it), else the
   * connection's domain.
   */
  account?: string | undefined
}

declare module '@core/connection' {
  interface NegotiationContext {
    /**
     * The account this attempt authenticated as: a bare JID, or a domain for an account
     * without a local part. Set by the authentication feature (`@client/sasl`), read by
     * resource binding to check the JID the server binds. Declared identically there.
     */
    account?: string | undefined
  }
}

export interface BindApi {
  /** The full JID bound last (also `connection.jid`). */
  readonly jid: JID | undefined
}

/**
 * Resource binding (RFC 6120 §7) and, where a server still requires it, session
 * establishment (RFC 3921 §3), as stream features. On success `connection.jid` is the full
 * JID the server assigned. Both are skipped on a resumed session (XEP-0198).
 */
export const bind = definePlugin({
  name: 'bind',
  options: {} as BindOptions,
  setup(ctx, options): BindApi {
    const resource = options.resource === '' ? undefined : options.resource
    if (resource !== undefined) checkResource(resource)
    const account = options.account === undefined ? undefined : checkAccount(options.account)
    const api = new BindState()

    ctx.feature(new BindFeature(resource, account, api))
    ctx.feature(SESSION_FEATURE)

    return api
  },
})

const BIND_OFFERS = { name: 'bind', xmlns: NS_BIND } as const

/**
 * The bind feature, one per connection: a class (methods on the prototype) rather than an
 * object literal of closures, since it lives as long as the connection (idle connections add
 * up).
 */
class BindFeature implements StreamFeature {
  readonly name = 'bind'
  readonly priority = FeaturePriority.BIND
  readonly offers = BIND_OFFERS
  // RFC 6120 §7.2: a client must bind before it exchanges stanzas. A server that offers no
  // <bind/> would give an online client with no address. On a resumed session a feature
  // before this one sets nc.resumed and returns 'continue': this one then runs and skips.
  readonly mustRun = true
  readonly #resource: string | undefined
  readonly #account: JID | undefined
  readonly #api: BindState

  constructor(resource: string | undefined, account: JID | undefined, api: BindState) {
    this.#resource = resource
    this.#account = account
    this.#api = api
  }

  applies(features: Element, nc: NegotiationContext): boolean {
    return !nc.resumed && features.getChild('bind', NS_BIND) !== undefined
  }

  async negotiate(_features: Element, nc: NegotiationContext): Promise<'continue'> {
    // applies() ran before the features of this round did: a resume may have happened.
    if (nc.resumed) return 'continue'
    const jid = await bindResource(nc, this.#resource, this.#account ?? nc.account ?? nc.domain)
    setBound(this.#api, jid)
    nc.connection.jid = jid
    // Not 'done': stream management may still be enabled after binding.
    return 'continue'
  }
}

/** Session establishment keeps no state of its own: one feature object for every connection. */
const SESSION_FEATURE: StreamFeature = Object.freeze({
  name: 'session',
  priority: FeaturePriority.SESSION,
  offers: Object.freeze({ name: 'session', xmlns: NS_SESSION }),
  // RFC 3921 §3 required it; servers that keep it for old clients mark it <optional/>
  // (draft-cridland-xmpp-session-01), and then it is skipped.
  applies(features: Element, nc: NegotiationContext): boolean {
    const session = features.getChild('session', NS_SESSION)
    return !nc.resumed && session !== undefined && session.getChild('optional') === undefined
  },
  async negotiate(_features: Element, nc: NegotiationContext): Promise<'continue'> {
    if (nc.resumed) return 'continue'
    await request(nc, 'session', 'session establishment', xml('session', { xmlns: NS_SESSION }))
    return 'continue'
  },
})

/** Records the JID bound last; set in BindState's static block. */
let setBound: (api: BindState, jid: JID) => void

/**
 * The plugin's API. A class rather than `{ get jid() {...} }`: an object literal with a
 * getter is put in dictionary mode (some 300 bytes per connection); an instance keeps the
 * field and shares the getter on the prototype (idle connections add up).
 */
class BindState implements BindApi {
  #jid: JID | undefined = undefined

  get jid(): JID | undefined {
    return this.#jid
  }

  static {
    setBound = (api, jid) => {
      api.#jid = jid
    }
  }
}

/** Fails at setup, rather than have the server refuse it (RFC 7622 §3.4). Throws JIDError. */
function checkResource(resource: string): void {
  JID.parse(`example.invalid/${resource}`)
}

/** The `account` option: a bare JID or a domain. Throws at setup otherwise. */
function checkAccount(account: string): JID {
  const jid = JID.parse(account)
  if (!jid.isBare()) {
    throw new TypeError(`bind: \`account\` "${account}" is not a bare JID or a domain`)
  }
  return jid
}

/**
 * RFC 6120 §7.4 - §7.6: asks for a resource (or none) and reads back the full JID, which must
 * belong to `account` (a bare JID or a domain, as a JID or a string).
 */
async function bindResource(
  nc: NegotiationContext,
  resource: string | undefined,
  account: JID | string,
): Promise<JID> {
  const payload = xml(
    'bind',
    { xmlns: NS_BIND },
    resource === undefined ? null : xml('resource', null, resource),
  )
  const result = await request(nc, 'bind', 'resource binding', payload)
  const text = result.getChild('bind', NS_BIND)?.getChildText('jid')
  if (text === null || text === undefined) {
    throw new BindError('the bind result carries no <jid/>', { element: result })
  }
  let jid: JID
  try {
    jid = JID.parse(text.trim())
  } catch (error) {
    if (!(error instanceof JIDError)) throw error
    throw new BindError(`the server bound an invalid JID: ${error.message}`, {
      condition: 'jid-malformed',
      element: result,
      cause: error,
    })
  }
  // §7.6.1: the result is a full JID (localpart@domainpart/resourcepart).
  if (jid.isBare() || jid.local === '') {
    throw new BindError(`the server bound "${jid}", which is not a full JID`, {
      condition: 'jid-malformed',
      element: result,
    })
  }
  // §7.6.1: the JID is the account's own, with a resource; a server binding us as someone
  // else (or on another domain) is not one to go online with.
  const expected = typeof account === 'string' ? JID.tryParse(account) : account
  const belongs =
    expected !== undefined &&
    (expected.local === '' ? jid.domain === expected.domain : jid.bare().equals(expected.bare()))
  if (!belongs) {
    throw new BindError(`the server bound "${jid}", not of the account "${account}"`, {
      code: 'foreign-jid',
      element: result,
    })
  }
  return jid
}

let counter = 0
const prefix = Array.from(globalThis.crypto.getRandomValues(new Uint8Array(4)), (b) =>
  b.toString(16).padStart(2, '0'),
).join('')

/**
 * An iq set during negotiation (the iq plugin only works once online): sent through the
 * outbound pipeline, its answer taken by id with waitFor (bounded by the negotiation
 * timeout). `type='error'` becomes a StanzaError.
 */
async function request(
  nc: NegotiationContext,
  name: string,
  what: string,
  payload: Element,
): Promise<Element> {
  const id = `${name}-${prefix}-${(counter++).toString(36)}`
  await nc.send(xml('iq', { type: 'set', id }, payload))
  const answer = await nc
    .waitFor(
      (el) =>
        el.name === 'iq' &&
        el.attrs.id === id &&
        (el.attrs.type === 'result' || el.attrs.type === 'error'),
    )
    .catch((error: unknown) => {
      // Name the step: "the peer did not answer" alone does not say to what.
      if (!(error instanceof TimeoutError)) throw error
      throw new TimeoutError(`no answer to the ${what} request: ${error.message}`)
    })
  if (answer.attrs.type === 'error') throw stanzaErrorOf(answer, what)
  return answer
}
