import {
  definePlugin,
  FeaturePriority,
  type NegotiationContext,
  type StreamFeature,
} from '@core/connection'
import { SASLError, TimeoutError } from '@core/errors'
import { xml } from '@core/xml'
import { fromBase64, toBase64 } from './base64.js'
import { randomBytes } from './crypto.js'
import { CredentialsError } from './errors.js'
import type { Credentials, MechanismSession } from './mechanism.js'
import { createPlain } from './plain.js'
import { createScram } from './scram.js'
import type { ScramCache } from './scram-cache.js'

/** RFC 6120 §6.4: the SASL namespace of XMPP. */
export const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl'

type Element = ReturnType<typeof xml>

/** The mechanisms this package implements, strongest first. */
export const SUPPORTED_MECHANISMS = ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] as const

export interface SASLOptions {
  /** Give username and password, or `credentials`. */
  username?: string | undefined
  password?: string | undefined
  /**
   * Called at each login for the username and password, so that the plugin's options need
   * not hold the password. Wins over `username` / `password`.
   */
  credentials?: (() => Credentials | Promise<Credentials>) | undefined
  /** Authorization identity: to act as another identity than the username's. */
  authzid?: string | undefined
  /** Mechanisms to use, in order of preference. */
  mechanisms: readonly string[]
  /**
   * Allow PLAIN on a connection without TLS (it sends the password as is). Implies
   * `allowPlainWithUnverifiedTLS`.
   */
  allowPlainWithoutTLS: boolean
  /**
   * Allow PLAIN over TLS whose certificate was not verified (the transport's `verified` is
   * false, e.g. `tls.insecure`): whoever is in the middle gets the password.
   */
  allowPlainWithUnverifiedTLS: boolean
  /** SCRAM: the fewest PBKDF2 iterations accepted from the server (RFC 5802 §9: 4096). */
  minIterations: number
  /** SCRAM: the most PBKDF2 iterations accepted (a hostile server cannot make us spin). */
  maxIterations: number
  /** SCRAM client nonce (tests). Default: 24 random bytes, base64. */
  nonce?: (() => string) | undefined
  /**
   * SCRAM: where to keep salted passwords between logins (RFC 5802 §5.1), e.g.
   * `memoryScramCache()`: a later login of the account with the same salt and iteration count
   * skips PBKDF2. The entries are secrets, like the password.
   */
  scramCache?: ScramCache | undefined
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

export interface SASLApi {
  /** The mechanism of the last successful login. */
  readonly mechanism: string | undefined
}

const DEFAULTS: SASLOptions = {
  mechanisms: [...SUPPORTED_MECHANISMS],
  allowPlainWithoutTLS: false,
  allowPlainWithUnverifiedTLS: false,
  minIterations: 4096,
  maxIterations: 600_000,
}

const isSupported = (name: string): boolean =>
  (SUPPORTED_MECHANISMS as readonly string[]).includes(name)

/**
 * SASL authentication (RFC 6120 §6) as a stream feature: SCRAM-SHA-256 (RFC 7677),
 * SCRAM-SHA-1 (RFC 5802) and PLAIN (RFC 4616), the first of `mechanisms` that the server
 * offers. Failures are SASLError with the server's condition (`not-authorized`, ...).
 */
export const sasl = definePlugin({
  name: 'sasl',
  options: DEFAULTS,
  setup(ctx, options): SASLApi {
    checkOptions(options)
    const api = new SASLState()

    ctx.feature(new SASLFeature(options, api))

    return api
  },
})

const SASL_OFFERS = { name: 'mechanisms', xmlns: NS_SASL } as const

/**
 * The feature, one per connection: a class (methods on the prototype) rather than an object
 * literal of closures, since it lives as long as the connection (idle connections add up).
 */
class SASLFeature implements StreamFeature {
  readonly name = 'sasl'
  readonly priority = FeaturePriority.SASL
  readonly offers = SASL_OFFERS
  // A client never goes online unauthenticated, even if the server offers no SASL.
  readonly mustRun = true
  readonly #options: SASLOptions
  readonly #api: SASLState

  constructor(options: SASLOptions, api: SASLState) {
    this.#options = options
    this.#api = api
  }

  applies(features: Element, nc: NegotiationContext): boolean {
    return !nc.completed.has('sasl') && features.getChild('mechanisms', NS_SASL) !== undefined
  }

  async negotiate(features: Element, nc: NegotiationContext): Promise<'restart'> {
    const options = this.#options
    const offered = (features.getChild('mechanisms', NS_SASL)?.getChildren('mechanism') ?? [])
      .map((m) => m.getText().trim())
      .filter((m) => m !== '')
    const name = choose(offered, options, channelOf(nc.transport))
    // Credentials given as options need no await (each await is a turn before <auth/>).
    const credentials = options.credentials
      ? await credentialsOf(options)
      : givenCredentials(options.username, options.password)
    const session = start(name, credentials, options)
    await authenticate(session, nc)
    setMechanism(this.#api, name)
    nc.account = accountOf(credentials.username, options.authzid, nc.domain)
    return 'restart'
  }
}

/** Records the mechanism of a successful login; set in SASLState's static block. */
let setMechanism: (api: SASLState, name: string) => void

/**
 * The plugin's API. A class rather than `{ get mechanism() {...} }`: an object literal with
 * a getter is put in dictionary mode (some 300 bytes per connection); an instance keeps the
 * field and shares the getter on the prototype (idle connections add up).
 */
class SASLState implements SASLApi {
  #mechanism: string | undefined = undefined

  get mechanism(): string | undefined {
    return this.#mechanism
  }

  static {
    setMechanism = (api, name) => {
      api.#mechanism = name
    }
  }
}

function checkOptions(options: SASLOptions): void {
  if (options.mechanisms.length === 0) throw new TypeError('sasl: `mechanisms` is empty')
  for (const name of options.mechanisms) {
    if (!isSupported(name)) throw new TypeError(`sasl: unsupported mechanism "${name}"`)
  }
  const cache = options.scramCache
  if (
    cache !== undefined &&
    (typeof cache?.get !== 'function' ||
      typeof cache.set !== 'function' ||
      typeof cache.delete !== 'function')
  ) {
    throw new TypeError('sasl: bad `scramCache`')
  }
  if (!Number.isSafeInteger(options.minIterations) || options.minIterations < 1) {
    throw new TypeError('sasl: bad `minIterations`')
  }
  if (
    !Number.isSafeInteger(options.maxIterations) ||
    options.maxIterations < options.minIterations
  ) {
    throw new TypeError('sasl: bad `maxIterations`')
  }
  if (
    !options.credentials &&
    (typeof options.username !== 'string' || typeof options.password !== 'string')
  ) {
    throw new TypeError('sasl: give `username` and `password`, or `credentials`')
  }
}

/** How far the channel protects what PLAIN sends. */
type Channel = 'plaintext' | 'unverified-tls' | 'verified-tls'

/**
 * A transport that is encrypted counts as verified unless it says otherwise: `verified` is
 * optional (`@transport/tcp` sets it false for TLS accepted through `tls.insecure`).
 */
function channelOf(transport: { readonly secure: boolean; readonly verified?: boolean }): Channel {
  if (!transport.secure) return 'plaintext'
  return transport.verified === false ? 'unverified-tls' : 'verified-tls'
}

/** Why PLAIN may not be used on this channel with these options, if it may not. */
function plainRefusal(channel: Channel, options: SASLOptions): string | undefined {
  if (channel === 'verified-tls' || options.allowPlainWithoutTLS) return undefined
  if (channel === 'plaintext') return 'refused without TLS (see allowPlainWithoutTLS)'
  if (options.allowPlainWithUnverifiedTLS) return undefined
  return 'refused over TLS whose certificate was not verified (see allowPlainWithUnverifiedTLS)'
}

/**
 * The first preferred mechanism the server offers that may be used here. When none, the
 * error lists what the server offered and why each was refused.
 */
function choose(offered: readonly string[], options: SASLOptions, channel: Channel): string {
  for (const name of options.mechanisms) {
    if (!offered.includes(name)) continue
    if (name === 'PLAIN' && plainRefusal(channel, options) !== undefined) continue
    return name
  }
  const reasons = offered.map((name) => {
    if (!isSupported(name)) return `${name}: not supported`
    if (!options.mechanisms.includes(name)) return `${name}: not in options.mechanisms`
    return `${name}: ${plainRefusal(channel, options)}`
  })
  throw new SASLError('invalid-mechanism', {
    message: `no acceptable SASL mechanism: ${reasons.join('; ') || 'the server offered none'}`,
  })
}

/**
 * Whom the server now knows us as: the authorization identity when one was given (a bare JID,
 * RFC 6120 §6.3.8), else the user name at the domain (a name given with its domain as it is).
 */
function accountOf(username: string, authzid: string | undefined, domain: string): string {
  if (authzid !== undefined && authzid !== '') return authzid
  return username.includes('@') ? username : `${username}@${domain}`
}

/** Username and password as given; `credentials()` results go through the same check. */
function givenCredentials(username: unknown, password: unknown): Credentials {
  if (typeof username !== 'string' || typeof password !== 'string') {
    throw new CredentialsError('credentials() must return { username, password } as strings')
  }
  return { username, password }
}

async function credentialsOf(options: SASLOptions): Promise<Credentials> {
  let given: { username?: unknown; password?: unknown } | undefined
  try {
    given = await options.credentials?.()
  } catch (error) {
    throw new CredentialsError('credentials() failed', error)
  }
  return givenCredentials(given?.username, given?.password)
}

function start(name: string, credentials: Credentials, options: SASLOptions): MechanismSession {
  if (name === 'PLAIN') return createPlain({ ...credentials, authzid: options.authzid })
  return createScram(name === 'SCRAM-SHA-256' ? 'SHA-256' : 'SHA-1', {
    ...credentials,
    authzid: options.authzid,
    nonce: options.nonce ? options.nonce() : toBase64(randomBytes(24)),
    minIterations: options.minIterations,
    maxIterations: options.maxIterations,
    cache: options.scramCache,
  })
}

const isReply = (el: Element): boolean =>
  el.getNS() === NS_SASL &&
  (el.name === 'challenge' || el.name === 'success' || el.name === 'failure')

/** Only `<success/>` ends the stream: a restart follows it (RFC 6120 §6.4.6). */
const isSuccess = (el: Element): boolean => el.name === 'success'

/** RFC 6120 §6.4.2 - §6.4.6: the exchange, from `<auth/>` to `<success/>` or `<failure/>`. */
async function authenticate(session: MechanismSession, nc: NegotiationContext): Promise<void> {
  const started = session.start()
  const initial = started instanceof Uint8Array ? started : await started
  // §6.4.2: a zero-length initial response is sent as '='.
  await nc.send(
    xml(
      'auth',
      { xmlns: NS_SASL, mechanism: session.name },
      initial.length > 0 ? toBase64(initial) : '=',
    ),
  )
  let last = 'auth'
  for (;;) {
    const reply = await nc.waitFor(isReply, { last: isSuccess }).catch((error: unknown) => {
      // Name the step: "the peer did not answer" alone does not say to what.
      if (!(error instanceof TimeoutError)) throw error
      throw new TimeoutError(`no answer to SASL <${last}/> (${session.name}): ${error.message}`)
    })
    if (reply.name === 'failure') {
      await session.failed?.()
      throw failureOf(reply)
    }
    if (reply.name === 'success') {
      // §6.3.10: the outcome of the exchange may come as additional data with success. The
      // stream already ended with it: an error here aborts the login, nothing is answered.
      await session.success(dataOf(reply))
      return
    }
    let response: Uint8Array
    try {
      response = await session.challenge(dataOf(reply) ?? new Uint8Array(0))
    } catch (error) {
      // §6.4.4: we give up on the exchange; the connection closes with this error.
      if (!nc.signal.aborted) await nc.send(xml('abort', { xmlns: NS_SASL }))
      throw error
    }
    await nc.send(
      xml('response', { xmlns: NS_SASL }, response.length > 0 ? toBase64(response) : ''),
    )
    last = 'response'
  }
}

/** The base64 payload of a challenge or success; undefined when the element is empty. */
function dataOf(el: Element): Uint8Array | undefined {
  const text = el.getText().trim()
  if (text === '') return undefined
  // An empty payload may be written as '=' (RFC 6120 §6.4.2).
  if (text === '=') return new Uint8Array(0)
  const data = fromBase64(text)
  if (!data) {
    throw new SASLError('incorrect-encoding', {
      message: `the server's <${el.name}/> is not valid base64`,
      element: el,
    })
  }
  return data
}

/** RFC 6120 §6.5: the conditions a `<failure/>` may carry. */
const SASL_CONDITIONS: ReadonlySet<string> = new Set(
  'aborted account-disabled credentials-expired encryption-required incorrect-encoding invalid-authzid invalid-mechanism malformed-request mechanism-too-weak not-authorized temporary-auth-failure'.split(
    ' ',
  ),
)

/**
 * RFC 6120 §6.4.5: the defined condition of a `<failure/>`, with its text. Only the
 * conditions of §6.5, in the SASL namespace, are taken as they are; anything else becomes
 * `not-authorized`, which §6.5.10 names for a generic failure (the server's element name is
 * kept in the message, its `<text/>` as text).
 */
function failureOf(el: Element): SASLError {
  let condition: string | undefined
  let other: string | undefined
  let text: string | undefined
  for (const child of el.getChildElements()) {
    if (child.getNS() !== NS_SASL) continue
    if (child.name === 'text') text = child.getText()
    else if (SASL_CONDITIONS.has(child.name)) condition ??= child.name
    else other ??= child.name
  }
  const extra = text ? { text } : {}
  if (condition !== undefined) return new SASLError(condition, { element: el, ...extra })
  const said = other === undefined ? 'no condition' : `<${other.slice(0, 64)}/>`
  return new SASLError('not-authorized', {
    element: el,
    ...extra,
    message: `SASL failure: not-authorized (the server sent ${said})${text ? ` (${text})` : ''}`,
  })
}
