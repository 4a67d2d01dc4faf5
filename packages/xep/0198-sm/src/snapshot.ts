import { ElementReader, type xml } from '@core/xml'
import { SmError } from './errors.js'

type Element = ReturnType<typeof xml>

/** A resumable session, as exportState() gives it and importState() takes it (JSON-safe). */
export interface SmSnapshot {
  version: 1
  /** The session id from `<enabled/>` (the `previd` of the resumption). */
  id: string
  /** The full JID the session is bound to. */
  jid: string | undefined
  location: string | undefined
  /** The server's resumption window, in seconds. */
  max: number | undefined
  /** When the server no longer keeps the session (ms since the epoch), when known. */
  expiresAt: number | undefined
  /** Our `h`: stanzas handled from the server. */
  inbound: number
  /** The server's last `h`. */
  acked: number
  /** How many of `unacked` (the oldest) were written on the last stream. */
  written: number
  /** The unacknowledged stanzas, oldest first, as XML. */
  unacked: string[]
}

/** The stanzas of a snapshot, one per entry, read as restricted XML (size-limited). */
export function parseStanzas(texts: readonly string[]): Element[] {
  const out: Element[] = []
  // Stanzas we wrote ourselves may be larger than what we accept from a peer.
  let longest = 1_048_576
  for (const text of texts) longest = Math.max(longest, String(text).length)
  // Each entry is one whole element: the whole-element reader (no stream parser needed).
  const reader = new ElementReader('jabber:client', { maxStanzaSize: longest })
  for (const text of texts) {
    if (typeof text !== 'string') throw new SmError('protocol', 'a snapshot stanza is not text')
    const { elements, error, complete } = reader.read(text)
    if (error) throw new SmError('protocol', `a snapshot stanza is not XML: ${error.message}`)
    const el = elements[0]
    const stanza = el?.name === 'message' || el?.name === 'presence' || el?.name === 'iq'
    if (!complete || elements.length !== 1 || !stanza) {
      throw new SmError('protocol', 'a snapshot holds something other than one stanza per entry')
    }
    el.parent = null
    out.push(el)
  }
  return out
}
