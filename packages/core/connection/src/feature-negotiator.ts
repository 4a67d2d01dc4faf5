import type { Element } from '@core/xml'
import { ConnectionError } from '@core/errors'
import type { NegotiationContext, Negotiator } from './features.js'
import { NS_STREAM } from '@core/xml'

const isFeatures = (element: Element): boolean => element.is('features', NS_STREAM)

/**
 * The default negotiation (RFC 6120 §4.3): for each `<stream:features/>`, run the
 * registered features that apply, in priority order. A feature's 'restart' restarts the
 * stream and waits for the next features; 'done' ends negotiation. When every applicable
 * feature said 'continue', negotiation is complete (nothing else is required).
 */
export const featureNegotiator: Negotiator = {
  streamAttributes: (connection) => ({
    to: connection.domain,
    version: '1.0',
    'xml:lang': connection.lang,
    xmlns: connection.xmlns,
    'xmlns:stream': NS_STREAM,
  }),

  async negotiate(nc: NegotiationContext): Promise<void> {
    for (;;) {
      const features = await nc.waitFor(isFeatures)
      assertRequiredCovered(features, nc)
      const applicable = nc.features.filter(
        (feature) => !nc.completed.has(feature.name) && feature.applies(features, nc),
      )
      let restarted = false
      for (const feature of applicable) {
        const result = await feature.negotiate(features, nc)
        nc.completed.add(feature.name)
        if (result === 'done') return assertRequiredRan(nc)
        if (result === 'restart') {
          await nc.restart()
          restarted = true
          break
        }
      }
      if (!restarted) return assertRequiredRan(nc)
    }
  },
}

/** Features marked `mustRun` must have run before the session goes online. */
function assertRequiredRan(nc: NegotiationContext): void {
  const missing = nc.features.filter((f) => f.mustRun && !nc.completed.has(f.name))
  if (missing.length > 0) {
    throw new ConnectionError(
      'negotiation-failed',
      `negotiation ended without ${missing.map((f) => `"${f.name}"`).join(', ')}: the server did not offer ${missing.length > 1 ? 'them' : 'it'}`,
    )
  }
}

/**
 * RFC 6120 §4.3.2: a feature marked `<required/>` must be negotiated. Without a registered
 * feature that negotiates it, going on would be wrong (STARTTLS required but no TLS plugin:
 * the next step would send credentials in the clear), so negotiation fails first.
 */
function assertRequiredCovered(features: Element, nc: NegotiationContext): void {
  for (const offered of features.getChildElements()) {
    if (!offered.getChild('required')) continue
    const name = offered.getName()
    const xmlns = offered.getNS()
    const covered = nc.features.some((f) => f.offers?.name === name && f.offers.xmlns === xmlns)
    if (!covered) {
      throw new ConnectionError(
        'negotiation-failed',
        `the server requires stream feature <${name} xmlns="${xmlns}"/> and no registered plugin negotiates it`,
      )
    }
  }
}
