import type { Framing, StreamReader } from '@core/connection'
import { StreamError } from '@core/errors'
import type { Element, StreamParserHandlers, StreamParserOptions } from '@core/xml'
import { ElementReader, escapeAttr, NS_STREAM, NS_STREAM_ERRORS, serialize } from '@core/xml'

export const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing'

/** RFC 7395: `<open/>` / `<close/>`, one complete element per message with its namespace. */
export const websocketFraming: Framing = {
  open(attrs) {
    // §3.3.2: no content namespace and no streams prefix on <open/>.
    let out = `<open xmlns='${NS_FRAMING}'`
    for (const key in attrs) {
      const value = attrs[key]
      if (value === undefined || key === 'xmlns' || key.startsWith('xmlns:')) continue
      out += ` ${key}='${escapeAttr(value)}'`
    }
    return `${out}/>`
  },
  close: `<close xmlns='${NS_FRAMING}'/>`,
  streamError: (condition, appCondition = '') =>
    `<stream:error xmlns:stream='${NS_STREAM}'><${condition} xmlns='${NS_STREAM_ERRORS}'/>${appCondition}</stream:error>`,
  element(element, xmlns) {
    const data = serialize(element)
    if (element.attrs.xmlns !== undefined) return data
    // §3.3.3: every message declares its namespace.
    const nameEnd = 1 + element.name.length
    return `${data.slice(0, nameEnd)} xmlns="${escapeAttr(xmlns)}"${data.slice(nameEnd)}`
  },
  batch: false,
  reader: (handlers, xmlns, limits) => new MessageReader(handlers, xmlns, limits),
}

/** Reads RFC 7395 messages (§3.3.3) whole; `<open/>` and `<close/>` start and end the stream. */
class MessageReader implements StreamReader {
  readonly #handlers: StreamParserHandlers
  readonly #reader: ElementReader
  #opened = false
  #stopped = false

  constructor(handlers: StreamParserHandlers, xmlns: string, limits?: StreamParserOptions) {
    this.#handlers = handlers
    this.#reader = new ElementReader(xmlns, limits)
  }

  get stopped(): boolean {
    return this.#stopped
  }

  stop(): void {
    this.#stopped = true
  }

  write(data: Uint8Array | string): void {
    if (this.#stopped) return
    if (typeof data !== 'string') {
      // §3.2: text frames only.
      this.#fail('a binary message (RFC 7395 allows text messages only)')
      return
    }
    if (data.charCodeAt(0) !== 0x3c) {
      this.#fail('a message that does not start with an element')
      return
    }
    const { elements, error, complete } = this.#reader.read(data)
    const first = elements[0]
    // The first element is handled before the rest is judged (a <close/> ends it all).
    if (first !== undefined) this.#element(first)
    if (this.#stopped) return
    if (error !== undefined) this.#error(error)
    else if (elements.length !== 1 || !complete) {
      this.#fail(
        elements.length > 1
          ? 'a message with more than one element'
          : 'a message that is not one complete element',
      )
    }
  }

  #element(element: Element): void {
    if (element.name === 'open' && element.attrs.xmlns === NS_FRAMING) {
      if (this.#opened) {
        this.#fail('a second <open/> on the same stream')
        return
      }
      this.#opened = true
      const attrs: Record<string, string> = {}
      for (const key in element.attrs) {
        if (key !== 'xmlns') attrs[key] = String(element.attrs[key])
      }
      this.#handlers.streamStart(attrs)
      return
    }
    if (!this.#opened) {
      this.#fail(`<${element.name}/> before <open/>`)
      return
    }
    if (element.name === 'close' && element.attrs.xmlns === NS_FRAMING) {
      this.#stopped = true
      this.#handlers.streamEnd()
      return
    }
    this.#handlers.element(element)
  }

  #fail(message: string): void {
    this.#error(new StreamError('not-well-formed', `RFC 7395 framing: ${message}`))
  }

  #error(error: StreamError): void {
    if (this.#stopped) return
    this.#stopped = true
    this.#handlers.error(error)
  }
}
