import type { Element } from '@core/xml'
import { ConnectionError } from '@core/errors'
import type { NegotiationContext, Negotiator } from './features.js'
import { NS_STREAM } from '@core/xml'

const isFeatures = (element: Element): boolean => element.is('features', NS_STREAM)

/** RFC 6120 §4.3: for each `<stream:features/>`, the features that apply, by priority. */
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
 * RFC 6120 §4.3.2: a `<required/>` feature nobody negotiates fails now (STARTTLS required
 * with no TLS plugin would otherwise send credentials in the clear).
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
