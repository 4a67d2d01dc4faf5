import type { Element } from 'ltx'
import { ConnectionError } from './errors.js'
import type { NegotiationContext, Negotiator } from './features.js'
import { NS_STREAM } from './namespaces.js'

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
      const applicable = nc.features.filter(
        (feature) => !nc.completed.has(feature.name) && feature.applies(features, nc),
      )
      if (applicable.length === 0) assertNothingRequired(features)
      let restarted = false
      for (const feature of applicable) {
        const result = await feature.negotiate(features, nc)
        nc.completed.add(feature.name)
        if (result === 'done') return
        if (result === 'restart') {
          await nc.restart()
          restarted = true
          break
        }
      }
      if (!restarted) return
    }
  },
}

/**
 * RFC 6120 §4.3.2: a feature marked `<required/>` must be negotiated. Without a plugin for
 * it, going online would be wrong (e.g. STARTTLS required but no TLS support configured).
 */
function assertNothingRequired(features: Element): void {
  for (const offered of features.getChildElements()) {
    if (offered.getChild('required')) {
      throw new ConnectionError(
        'negotiation-failed',
        `the server requires stream feature <${offered.getName()} xmlns="${offered.getNS()}"/> and no registered plugin negotiates it`,
      )
    }
  }
}
