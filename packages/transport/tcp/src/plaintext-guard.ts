/** RFC 6120 §5.4: the STARTTLS namespace. */
const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls'

const XMLNS = /\sxmlns\s*=\s*(["'])(.*?)\1/
const NAME = /^[^\s/>]+/
const WHITESPACE = /^\s*$/

/**
 * Watches what a client writes on a stream that is not encrypted while plaintext is not
 * allowed. The only things that may cross such a stream are the stream header, `<starttls/>`
 * (RFC 6120 §5.4.2.1), a stream error and the closing tag; anything else (SASL `<auth/>`, a
 * bind, a stanza) would go out readable by anyone on the path, so the transport refuses it,
 * whichever plugins produced it (RFC 6120 §13.9.5: no credentials before TLS).
 *
 * It reads our own serializer's output, which is well-formed and writes whole top-level
 * elements per write; whatever it cannot classify (a comment, a tag cut between two writes)
 * is refused too: it fails closed.
 */
export class PlaintextGuard {
  /** 0: before the stream header; 1: inside the stream; 2 and more: inside an element. */
  #depth = 0

  /**
   * Undefined when `data` may be sent in the clear; otherwise what is refused, for the
   * error message (`<auth/>`, `text`, ...). Once something was refused, nothing passes.
   */
  check(data: string): string | undefined {
    const refused = this.#scan(data)
    if (refused !== undefined) this.#depth = -1
    return refused
  }

  #scan(data: string): string | undefined {
    if (this.#depth < 0) return 'data after a refusal'
    let i = 0
    while (i < data.length) {
      const lt = data.indexOf('<', i)
      const text = data.slice(i, lt === -1 ? data.length : lt)
      // Whitespace between top-level elements is a keepalive; other text has no place there.
      if (this.#depth < 2 && !WHITESPACE.test(text)) return 'text'
      if (lt === -1) break
      const gt = tagEnd(data, lt + 1)
      if (gt === -1) return 'an incomplete tag'
      const tag = data.slice(lt + 1, gt)
      i = gt + 1
      const refused = this.#tag(tag)
      if (refused !== undefined) return refused
    }
    return this.#depth >= 2 ? 'an incomplete element' : undefined
  }

  #tag(tag: string): string | undefined {
    const first = tag.charAt(0)
    if (first === '?') return this.#depth === 0 ? undefined : 'a processing instruction'
    if (first === '!') return 'a comment or CDATA section'
    if (first === '/') {
      if (this.#depth < 1) return 'an unbalanced end tag'
      this.#depth--
      return undefined
    }
    const name = NAME.exec(tag)?.[0] ?? ''
    const open = !tag.endsWith('/')
    if (this.#depth === 0) {
      // The stream header: <stream:stream ...> (RFC 6120 §4.2).
      if (name !== 'stream' && !name.endsWith(':stream')) return `<${name}/>`
    } else if (this.#depth === 1 && !allowedBeforeTls(name, tag)) {
      return `<${name}/>`
    }
    if (open) this.#depth++
    return undefined
  }
}

/** `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>` or a stream error. */
function allowedBeforeTls(name: string, tag: string): boolean {
  if (name === 'stream:error') return true
  return name === 'starttls' && XMLNS.exec(tag)?.[2] === NS_TLS
}

/** The index of the `>` that ends the tag starting at `from`, skipping quoted values; -1 if none. */
function tagEnd(data: string, from: number): number {
  let quote = ''
  for (let i = from; i < data.length; i++) {
    const c = data.charAt(i)
    if (quote !== '') {
      if (c === quote) quote = ''
    } else if (c === '"' || c === "'") quote = c
    else if (c === '>') return i
  }
  return -1
}
