import {
  definePlugin,
  FeaturePriority,
  type FeatureResult,
  type NegotiationContext,
  type StreamFeature,
} from '@core/connection'
import { TimeoutError } from '@core/errors'
import { xml } from '@core/xml'
import { TLSError } from './errors.js'
import { isTcpTransport } from './tcp-transport.js'

/** An element as the core hands it over (an ltx Element). */
type Element = Parameters<StreamFeature['negotiate']>[0]

/** RFC 6120 §5.4: the STARTTLS namespace. */
export const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls'

export interface StartTlsOptions {
  /**
   * Go on without TLS when the server offers no STARTTLS (and the transport is not
   * encrypted). Default false. Over `tcp()` this is not enough: the transport refuses to send
   * anything but STARTTLS in the clear unless `tcp({ allowPlaintext: true })`, which also
   * lets this plugin go on. It never allows going on after STARTTLS failed.
   */
  allowPlaintext: boolean
}

const isProceedOrFailure = (element: Element): boolean =>
  (element.name === 'proceed' || element.name === 'failure') && element.getNS() === NS_TLS

/**
 * STARTTLS (RFC 6120 §5) as a stream feature. It runs first (FeaturePriority.STARTTLS) on
 * every stream that is not encrypted yet, and makes TLS mandatory: without an offer the
 * connection fails with TLSError `tls-required` unless plaintext was allowed.
 */
export const starttls = definePlugin({
  name: 'starttls',
  options: { allowPlaintext: false } as StartTlsOptions,
  setup(ctx, options) {
    ctx.feature(new StartTlsFeature(options))
  },
})

const STARTTLS_OFFERS = { name: 'starttls', xmlns: NS_TLS } as const
const CONTINUE: Promise<FeatureResult> = Promise.resolve('continue')

/**
 * The feature, one per connection: a class (methods on the prototype) rather than an object
 * literal of closures, since it lives as long as the connection (idle connections add up).
 */
class StartTlsFeature implements StreamFeature {
  readonly name = 'starttls'
  readonly priority = FeaturePriority.STARTTLS
  readonly offers = STARTTLS_OFFERS
  readonly #options: StartTlsOptions

  constructor(options: StartTlsOptions) {
    this.#options = options
  }

  // Whenever the channel is not encrypted, whatever the server offered: no offer is
  // exactly the case that must fail (RFC 6120 §5.3.1, §13.9.5: no downgrade).
  applies(_features: Element, nc: NegotiationContext): boolean {
    return !nc.transport.secure
  }

  negotiate(features: Element, nc: NegotiationContext): Promise<FeatureResult> {
    // Plaintext allowed and nothing to upgrade: no async function to run through.
    if (!features.getChild('starttls', NS_TLS) && plaintextAllowed(nc, this.#options)) {
      return CONTINUE
    }
    return negotiate(features, nc, this.#options)
  }
}

function plaintextAllowed(nc: NegotiationContext, options: StartTlsOptions): boolean {
  const transport = nc.transport
  return options.allowPlaintext || (isTcpTransport(transport) && transport.allowPlaintext)
}

async function negotiate(
  features: Element,
  nc: NegotiationContext,
  options: StartTlsOptions,
): Promise<FeatureResult> {
  const transport = nc.transport
  const allowed = plaintextAllowed(nc, options)
  if (!isTcpTransport(transport)) {
    // Another transport that is not encrypted cannot be upgraded here.
    if (allowed) return 'continue'
    throw new TLSError(
      'tls-required',
      `the connection to ${nc.domain} is not encrypted and its transport cannot start TLS; use an encrypted transport or allow plaintext`,
    )
  }
  if (!features.getChild('starttls', NS_TLS)) {
    if (allowed) return 'continue'
    throw new TLSError(
      'tls-required',
      `${nc.domain} does not offer STARTTLS and plaintext is not allowed (RFC 6120 §5)`,
    )
  }
  // RFC 6120 §5.4.2.1: ask to start TLS.
  await nc.send(xml('starttls', { xmlns: NS_TLS }))
  // RFC 6120 §5.4.2.2-3: <proceed/> or <failure/>; after <proceed/> the old stream is over
  // and nothing more read on it may be acted on (`last`). A drop shows up on `closed`
  // before the connection hears of it, so that it is reported as what it is.
  const outcome = await Promise.race([
    nc.waitFor(isProceedOrFailure, { last: true }).then(
      (element) => ({ element, error: undefined }),
      (error: unknown) => {
        // Name the step: "the peer did not answer" alone does not say to what.
        if (!(error instanceof TimeoutError)) throw error
        throw new TimeoutError(`no answer to <starttls/> from ${nc.domain}: ${error.message}`)
      },
    ),
    transport.closed.then((error) => ({ element: undefined, error })),
  ])
  if (!outcome.element) {
    throw new TLSError(
      'starttls-failed',
      `${nc.domain} closed the connection instead of answering <starttls/>`,
      { cause: outcome.error },
    )
  }
  if (outcome.element.name === 'failure') {
    // RFC 6120 §5.4.2.2: the server closes the stream and the connection after <failure/>.
    throw new TLSError('starttls-failed', `${nc.domain} refused STARTTLS (<failure/>)`, {
      element: outcome.element,
    })
  }
  // RFC 6120 §5.4.3.3: TLS over the same TCP connection, then a new stream (restart).
  await transport.startTls()
  return 'restart'
}
