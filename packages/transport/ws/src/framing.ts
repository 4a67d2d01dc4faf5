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
  reader: messageReader,
}

/** Reads RFC 7395 messages (§3.3.3) whole; `<open/>` and `<close/>` start and end the stream. */
function messageReader(
  handlers: StreamParserHandlers,
  xmlns: string,
  limits?: StreamParserOptions,
): StreamReader {
  const reader = new ElementReader(xmlns, limits)
  let opened = false
  let stopped = false
  const error = (e: StreamError): void => {
    if (stopped) return
    stopped = true
    handlers.error(e)
  }
  const fail = (message: string): void =>
    error(new StreamError('not-well-formed', `RFC 7395 framing: ${message}`))
  const element = (el: Element): void => {
    const framing = el.attrs.xmlns === NS_FRAMING
    if (framing && el.name === 'open' && opened) {
      fail('a second <open/> on the same stream')
    } else if (framing && el.name === 'open') {
      opened = true
      const attrs: Record<string, string> = {}
      for (const key in el.attrs) {
        if (key !== 'xmlns') attrs[key] = String(el.attrs[key])
      }
      handlers.streamStart(attrs)
    } else if (!opened) {
      fail(`<${el.name}/> before <open/>`)
    } else if (framing && el.name === 'close') {
      stopped = true
      handlers.streamEnd()
    } else {
      handlers.element(el)
    }
  }
  return {
    get stopped() {
      return stopped
    },
    stop() {
      stopped = true
    },
    write(data) {
      if (stopped) return
      // §3.2: text frames only.
      if (typeof data !== 'string') return fail('a binary message (text messages only)')
      if (data.charCodeAt(0) !== 0x3c) return fail('a message that does not start with an element')
      const read = reader.read(data)
      const [first] = read.elements
      const n = read.elements.length
      // The first element is handled before the rest is judged (a <close/> ends it all).
      if (first !== undefined) element(first)
      if (read.error !== undefined) error(read.error)
      else if (n !== 1 || !read.complete) {
        fail(
          n > 1
            ? 'a message with more than one element'
            : 'a message that is not one complete element',
        )
      }
    },
  }
}
