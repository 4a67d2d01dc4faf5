import { ElementReader, NS_CLIENT } from '@core/xml'

/** XEP-0156 §3: the link relation of an XMPP-over-WebSocket endpoint. */
export const REL_WEBSOCKET = 'urn:xmpp:alt-connections:websocket'

/** A host-meta document larger than this is not read (it is a few hundred bytes in practice). */
const MAX_HOST_META_BYTES = 65_536

/** The part of the Fetch API discovery uses (globalThis.fetch in browsers and Node 18+). */
export type FetchLike = (
  url: string,
  init: { signal?: AbortSignal; redirect: 'follow'; headers: Record<string, string> },
) => Promise<{ ok: boolean; url: string; text(): Promise<string> }>

/**
 * Finds the WebSocket endpoints of a domain, best first; `websocket({ discovery })` uses the
 * first when the connection has no `service`.
 */
export type Discovery = (domain: string, signal: AbortSignal) => Promise<readonly string[]>

export interface DiscoveryOptions {
  /** Default: globalThis.fetch. */
  fetch?: FetchLike
  signal?: AbortSignal
}

/**
 * The `wss:` endpoints a domain announces through host-meta (XEP-0156 §3): the JSON form
 * (`/.well-known/host-meta.json`) first, then the XML form (`/.well-known/host-meta`). Only
 * over HTTPS (a document fetched in the clear could send us anywhere), and only `wss:`
 * links: a `ws:` one would carry the login in the clear. Empty when none is found.
 */
export async function discoverWebSocket(
  domain: string,
  options: DiscoveryOptions = {},
): Promise<string[]> {
  const fetcher = options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch ?? missingFetch
  const base = `https://${domain}/.well-known/host-meta`
  for (const [url, read] of [
    [`${base}.json`, linksFromJson],
    [base, linksFromXml],
  ] as const) {
    options.signal?.throwIfAborted()
    const text = await fetchText(fetcher, url, options.signal)
    if (text === undefined) continue
    const links = read(text).filter(isSecureWebSocket)
    if (links.length > 0) return links
  }
  return []
}

/**
 * XEP-0156 host-meta lookup as `websocket({ discovery: hostMeta() })` takes it; `fetch`
 * defaults to globalThis.fetch.
 */
export function hostMeta(options: { fetch?: FetchLike } = {}): Discovery {
  return (domain, signal) => discoverWebSocket(domain, { ...options, signal })
}

async function fetchText(
  fetcher: FetchLike,
  url: string,
  signal: AbortSignal | undefined,
): Promise<string | undefined> {
  let response: Awaited<ReturnType<FetchLike>>
  try {
    response = await fetcher(url, {
      ...(signal ? { signal } : {}),
      redirect: 'follow',
      headers: { accept: url.endsWith('.json') ? 'application/json' : 'application/xrd+xml' },
    })
  } catch (error) {
    if (signal?.aborted) throw error
    // No such document, no such host, refused: try the other form, or find nothing.
    return undefined
  }
  // A redirect may not leave HTTPS.
  if (!response.ok || !response.url.startsWith('https:')) return undefined
  const text = await response.text()
  return text.length > MAX_HOST_META_BYTES ? undefined : text
}

function linksFromJson(text: string): string[] {
  let document: unknown
  try {
    document = JSON.parse(text)
  } catch {
    // Not JSON: no links here.
    return []
  }
  const links = (document as { links?: unknown })?.links
  if (!Array.isArray(links)) return []
  const out: string[] = []
  for (const link of links) {
    const { rel, href } = (link ?? {}) as { rel?: unknown; href?: unknown }
    if (rel === REL_WEBSOCKET && typeof href === 'string') out.push(href)
  }
  return out
}

function linksFromXml(text: string): string[] {
  // The restricted-XML reader reads the XRD as an element of an implied stream, as it reads
  // a WebSocket message; a document it refuses (a DTD, say) yields no links.
  const body = text.replace(/^\uFEFF?\s*<\?xml[^>]*\?>/, '')
  const root = new ElementReader(NS_CLIENT, { maxStanzaSize: MAX_HOST_META_BYTES }).read(body)
    .elements[0]
  if (root?.name !== 'XRD') return []
  return root
    .getChildren('Link')
    .filter((link) => link.attrs.rel === REL_WEBSOCKET && typeof link.attrs.href === 'string')
    .map((link) => String(link.attrs.href))
}

function isSecureWebSocket(href: string): boolean {
  try {
    const url = new URL(href)
    return url.protocol === 'wss:' && url.hash === ''
  } catch {
    // Not a URL: not an endpoint.
    return false
  }
}

const missingFetch: FetchLike = () => Promise.reject(new Error('this runtime has no fetch()'))
