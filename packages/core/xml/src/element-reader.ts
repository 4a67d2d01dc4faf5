import { StreamError } from '@core/errors'
import { Element } from './element.js'
import { NS_STREAM } from './namespaces.js'
import type { StreamParserOptions } from './stream-parser.js'

/**
 * Reads text that holds whole elements, such as an RFC 7395 message (one complete element
 * per WebSocket message, §3.3.3), as top-level children of an implied stream: its content
 * namespace is the default one and the `stream` prefix is bound.
 *
 * The same restricted XML (RFC 6120 §11) and the same limits as StreamParser, with the same
 * stream error conditions: no DOCTYPE, comments, processing instructions or entities other
 * than the five predefined ones and character references; XML 1.0 and Namespaces
 * well-formedness; `maxStanzaSize`, `maxDepth` and `maxAttributes`. A differential test
 * (element-reader.fuzz.test.ts) holds the two to the same events. What it leaves out is
 * what a whole message does not need: resuming at any byte, UTF-8 decoding, the stream
 * header. It is a fraction of StreamParser's size, so a WebSocket-only bundle carries no
 * StreamParser.
 */
export class ElementReader {
  readonly #scope: Scope
  readonly #xmlns: string
  readonly #limits: Limits

  /** `xmlns`: the stream's content namespace (e.g. jabber:client). */
  constructor(xmlns: string, options: StreamParserOptions = {}) {
    this.#xmlns = xmlns
    this.#scope = new Map([
      ['xml', XML_NS],
      ['stream', NS_STREAM],
    ])
    this.#limits = [
      limit(options.maxStanzaSize, 1_048_576, 'maxStanzaSize'),
      limit(options.maxDepth, 64, 'maxDepth'),
      limit(options.maxAttributes, 128, 'maxAttributes'),
    ]
  }

  /**
   * The elements of `text`, in order, up to the first error, if any. `complete` is false
   * when the text ended inside an element (without error).
   */
  read(text: string): ElementsRead {
    const elements: Element[] = []
    const max = this.#limits[0]
    const len = text.length
    let i = 0
    try {
      for (;;) {
        i = skipSpace(text, i)
        if (i >= len) return { elements, error: undefined, complete: true }
        if (text.charCodeAt(i) !== 0x3c) fail(BAD_FORMAT, 'text at the stream level')
        // A top-level element may take maxStanzaSize characters from its '<' (never
        // ending between the two halves of a surrogate pair).
        let end = i + max
        let s = text
        if (end < len) {
          if (isHigh(text.charCodeAt(end - 1))) end--
          s = text.slice(0, end)
        }
        try {
          elements.push(readElement(s, i, this.#scope, this.#xmlns, this.#limits))
        } catch (error) {
          if (error === ENDED && s !== text) fail(POLICY, `element larger than ${max} characters`)
          throw error
        }
        i = at
      }
    } catch (error) {
      if (error === ENDED) return { elements, error: undefined, complete: false }
      if (error instanceof StreamError) return { elements, error, complete: false }
      throw error
    }
  }
}

export interface ElementsRead {
  elements: Element[]
  /** What stopped the reading: restricted-xml, not-well-formed, bad-format, policy-violation. */
  error: StreamError | undefined
  /** true when the text ended between elements. */
  complete: boolean
}

type Scope = Map<string, string>
/** maxStanzaSize, maxDepth, maxAttributes. */
type Limits = readonly [number, number, number]

const XML_NS = 'http://www.w3.org/XML/1998/namespace'
const XMLNS_NS = 'http://www.w3.org/2000/xmlns/'
const NWF = 'not-well-formed'
const RESTRICTED = 'restricted-xml'
const BAD_FORMAT = 'bad-format'
const POLICY = 'policy-violation'

/** Thrown when the text (or the size limit) ends inside an element. */
const ENDED = new Error('ended')
/** Where the last element or reference read ended (the reader is not re-entrant). */
let at = 0

function fail(condition: string, message: string): never {
  throw new StreamError(condition, message)
}

function limit(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`${what} must be a positive integer`)
  return value
}

// XML 1.0 (5th ed.) §2.3: NameStartChar and NameChar (a pair of surrogates: U+10000..U+EFFFF).
const START =
  ':A-Z_a-z\\xc0-\\xd6\\xd8-\\xf6\\xf8-\\u02ff\\u0370-\\u037d\\u037f-\\u1fff\\u200c\\u200d\\u2070-\\u218f\\u2c00-\\u2fef\\u3001-\\ud7ff\\uf900-\\ufdcf\\ufdf0-\\ufffd'
const PAIR = '[\\ud800-\\udb7f][\\udc00-\\udfff]'
const CHAR = `[${START}.0-9\\xb7\\u0300-\\u036f\\u203f\\u2040-]*`
const NAME = new RegExp(`(?:[${START}]|${PAIR})${CHAR}(?:${PAIR}${CHAR})*`, 'y')
// Runs of characters that need no attention (what stops them: markup, quotes, '\r', '\t' and
// '\n' in attribute values, characters XML does not allow, surrogates).
const TEXT_RUN = /[^<&>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]*/y
const CDATA_RUN = /[^>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]*/y
const APOS_RUN = /[^'<&\x00-\x1f\ud800-\udfff\ufffe\uffff]*/y
const QUOT_RUN = /[^"<&\x00-\x1f\ud800-\udfff\ufffe\uffff]*/y
const CHAR_REF = /#(?:x([\da-fA-F]*)|(\d*))/y
const ENTITIES: Record<string, string> = {
  __proto__: null,
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
} as never

/** XML 1.0 §2.3: is `s` a Name? (The serializer's check, with the reader's expression.) */
export function isXMLName(s: string): boolean {
  return s !== '' && nameEnd(s, 0) === s.length
}

/** End of the Name at s[i] (i when there is none). */
function nameEnd(s: string, i: number): number {
  NAME.lastIndex = i
  return NAME.test(s) ? NAME.lastIndex : i
}

function run(re: RegExp, s: string, i: number): number {
  re.lastIndex = i
  re.test(s)
  return re.lastIndex
}

/** The code unit at s[i]; past the end, the element is unfinished. */
function code(s: string, i: number): number {
  if (i >= s.length) throw ENDED
  return s.charCodeAt(i)
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d
}

function skipSpace(s: string, i: number): number {
  while (isSpace(s.charCodeAt(i))) i++
  return i
}

function isHigh(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff
}

/** Width of the XML character at s[i] that a run stopped at (a pair, U+E000..U+FFFD), or 0. */
function charWidth(s: string, i: number): number {
  const c = s.charCodeAt(i)
  if (isHigh(c)) {
    const d = s.charCodeAt(i + 1)
    return d >= 0xdc00 && d <= 0xdfff ? 2 : 0
  }
  return c >= 0xe000 && c <= 0xfffd ? 1 : 0
}

/** Namespaces in XML 1.0 §3: the xml and xmlns names may not be declared. */
function isReserved(uri: string): boolean {
  return uri === XML_NS || uri === XMLNS_NS
}

/** One colon, with an NCName on both sides. */
function validQName(name: string, colon: number): boolean {
  return colon > 0 && name.indexOf(':', colon + 1) === -1 && nameEnd(name, colon + 1) > colon + 1
}

/** XML 1.0 §4.1, §4.6: the reference at s[i] ('&'), decoded; `at` is set past its ';'. */
function reference(s: string, i: number): string {
  if (code(s, ++i) === 0x23) {
    // A character reference: '#x' and hex digits, or '#' and decimal digits, then ';'.
    CHAR_REF.lastIndex = i
    const m = CHAR_REF.exec(s) as RegExpExecArray
    const digits = m[1] ?? (m[2] as string)
    const v = Number.parseInt(digits, m[1] === undefined ? 10 : 16)
    if (v > 0x10ffff) fail(NWF, 'character reference out of range')
    i = CHAR_REF.lastIndex
    if (code(s, i) !== 0x3b || digits === '') fail(NWF, 'invalid character reference')
    // XML 1.0 §2.2: Char.
    if (
      !(
        v === 9 ||
        v === 10 ||
        v === 13 ||
        (v >= 0x20 && v <= 0xd7ff) ||
        (v >= 0xe000 && v !== 0xfffe && v !== 0xffff)
      )
    ) {
      fail(NWF, `character reference to an illegal character (${v})`)
    }
    at = i + 1
    return String.fromCodePoint(v)
  }
  const j = nameEnd(s, i)
  if (j === i) fail(NWF, "'&' not starting a reference")
  // RFC 6120 §11.1: the predefined entities (at most four letters) and nothing else.
  if (j - i > 4) fail(RESTRICTED, 'entity reference')
  if (code(s, j) !== 0x3b) fail(NWF, "'&' not starting a reference")
  const name = s.slice(i, j)
  const ch = ENTITIES[name]
  if (ch === undefined) fail(RESTRICTED, `entity reference &${name};`)
  at = j + 1
  return ch
}

/** The element whose '<' is s[start] (s ends where its size limit does); `at` is set past it. */
function readElement(
  s: string,
  start: number,
  root: Scope,
  xmlns: string,
  limits: Limits,
): Element {
  const maxDepth = limits[1]
  const maxAttrs = limits[2]
  const parents: (Element | undefined)[] = []
  const scopes: Scope[] = []
  let scope = root
  let current: Element | undefined
  let text = ''
  let i = start
  for (;;) {
    // s[i] is '<'.
    let c = code(s, ++i)
    if (c === 0x2f) {
      // An end tag; at the top level, it would end the implied stream.
      const expected = current?.name ?? 'stream:stream'
      const j = nameEnd(s, ++i)
      if (j === i && code(s, i) >= 0) fail(NWF, 'invalid end tag')
      code(s, j)
      if (s.slice(i, j) !== expected) fail(NWF, `mismatched end tag: expected </${expected}>`)
      i = skipSpace(s, j)
      if (code(s, i) !== 0x3e) fail(NWF, 'invalid character in end tag')
      i++
      if (current === undefined) fail(NWF, 'a message closed the implied stream')
      if (text !== '') current.children.push(text)
      text = ''
      const parent = parents.pop()
      scope = scopes.pop() as Scope
      if (parent === undefined) {
        at = i
        return current
      }
      current = parent
    } else if (c === 0x21) {
      c = code(s, ++i)
      if (c === 0x5b) {
        if (current === undefined) fail(BAD_FORMAT, 'CDATA section at the stream level')
        for (let k = 0; k < 6; k++) {
          if (code(s, ++i) !== 'CDATA['.charCodeAt(k)) fail(NWF, "invalid markup after '<!['")
        }
        const from = ++i
        for (;;) {
          const j = run(CDATA_RUN, s, i)
          text += s.slice(i, j)
          i = j
          c = code(s, i)
          if (
            c === 0x3e &&
            i - from >= 2 &&
            s.charCodeAt(i - 1) === 0x5d &&
            s.charCodeAt(i - 2) === 0x5d
          ) {
            text = text.slice(0, -2)
            i++
            break
          }
          if (c === 0x3e) {
            text += '>'
            i++
          } else if (c === 0x0d) {
            // XML 1.0 §2.11: "\r\n" and "\r" become "\n".
            if (s.charCodeAt(i + 1) !== 0x0a) text += '\n'
            i++
          } else {
            if (charWidth(s, i) !== 2) fail(NWF, 'illegal character in CDATA section')
            text += s.slice(i, i + 2)
            i += 2
          }
        }
      } else if (c === 0x2d) {
        if (code(s, i + 1) === 0x2d) fail(RESTRICTED, 'comment')
        fail(NWF, "invalid markup after '<!-'")
      } else if (c === 0x44) {
        fail(RESTRICTED, 'DOCTYPE declaration')
      } else {
        fail(NWF, "invalid markup after '<!'")
      }
    } else if (c === 0x3f) {
      fail(RESTRICTED, 'processing instruction')
    } else {
      // A start tag.
      let j = nameEnd(s, i)
      if (j === i) fail(NWF, "invalid character after '<'")
      if (parents.length >= maxDepth) fail(POLICY, `elements nested deeper than ${maxDepth}`)
      c = code(s, j)
      const name = s.slice(i, j)
      if (!(c === 0x3e || c === 0x2f || isSpace(c))) fail(NWF, 'invalid character in element name')
      i = j
      const names: string[] = []
      const values: string[] = []
      let selfClosing = false
      for (;;) {
        j = skipSpace(s, i)
        const sawSpace = j > i
        i = j
        c = code(s, i)
        if (c === 0x3e) {
          i++
          break
        }
        if (c === 0x2f) {
          if (code(s, i + 1) !== 0x3e) fail(NWF, "expected '>' after '/'")
          i += 2
          selfClosing = true
          break
        }
        j = nameEnd(s, i)
        if (j === i || !sawSpace) fail(NWF, 'invalid character in start tag')
        if (names.length >= maxAttrs) fail(POLICY, `more than ${maxAttrs} attributes`)
        c = code(s, j)
        names.push(s.slice(i, j))
        i = j + 1
        if (c !== 0x3d) {
          if (!isSpace(c)) fail(NWF, 'invalid character in attribute name')
          i = skipSpace(s, i)
          if (code(s, i) !== 0x3d) fail(NWF, "expected '=' after attribute name")
          i++
        }
        i = skipSpace(s, i)
        const q = code(s, i++)
        if (q !== 0x22 && q !== 0x27) fail(NWF, 'unquoted attribute value')
        let value = ''
        for (;;) {
          j = run(q === 0x27 ? APOS_RUN : QUOT_RUN, s, i)
          value += s.slice(i, j)
          i = j
          c = code(s, i)
          if (c === q) break
          if (c === 0x3c) fail(NWF, "'<' in attribute value")
          if (c === 0x26) {
            value += reference(s, i)
            i = at
          } else if (c === 0x09 || c === 0x0a || c === 0x0d) {
            // XML 1.0 §3.3.3: literal whitespace becomes a space ("\r\n" one space).
            if (c !== 0x0d || s.charCodeAt(i + 1) !== 0x0a) value += ' '
            i++
          } else {
            const w = charWidth(s, i)
            if (w === 0) fail(NWF, 'illegal character in attribute value')
            value += s.slice(i, i + w)
            i += w
          }
        }
        values.push(value)
        i++
      }

      // Namespaces in XML 1.0: declarations first (they apply to this element's own names).
      const element = new Element(name)
      const attrs = element.attrs as Record<string, string>
      let inner = scope
      let prefixed = false
      for (let k = 0; k < names.length; k++) {
        const an = names[k] as string
        const av = values[k] as string
        if (names.indexOf(an) < k) fail(NWF, `duplicate attribute ${an}`)
        if (an.startsWith('xmlns:')) {
          const prefix = an.slice(6)
          if (
            prefix.indexOf(':') !== -1 ||
            nameEnd(prefix, 0) === 0 ||
            av === '' ||
            prefix === 'xmlns' ||
            (prefix === 'xml' ? av !== XML_NS : isReserved(av))
          ) {
            fail(NWF, `invalid namespace declaration ${an}`)
          }
          if (inner === scope) inner = new Map(scope)
          inner.set(prefix, av)
        } else if (an === 'xmlns') {
          if (isReserved(av)) fail(NWF, `invalid namespace declaration xmlns='${av}'`)
        } else if (an.indexOf(':') !== -1) {
          prefixed = true
        }
        if (an === '__proto__') {
          Object.defineProperty(attrs, an, {
            value: av,
            enumerable: true,
            writable: true,
            configurable: true,
          })
        } else {
          attrs[an] = av
        }
      }
      if (prefixed) {
        const seen = new Set<string>()
        for (const an of names) {
          const colon = an.indexOf(':')
          if (colon === -1 || an.startsWith('xmlns:')) continue
          if (!validQName(an, colon)) fail(NWF, `invalid attribute name ${an}`)
          const uri = inner.get(an.slice(0, colon))
          if (uri === undefined) fail(NWF, `undeclared namespace prefix in attribute ${an}`)
          // Two attributes with the same namespace and local name are duplicates.
          const key = `{${uri}}${an.slice(colon + 1)}`
          if (seen.has(key)) fail(NWF, `duplicate attribute ${an}`)
          seen.add(key)
        }
      }
      const colon = name.indexOf(':')
      let uri = attrs.xmlns ?? xmlns
      if (colon !== -1) {
        if (!validQName(name, colon)) fail(NWF, `invalid element name ${name}`)
        const bound = inner.get(name.slice(0, colon))
        if (bound === undefined) fail(NWF, `undeclared namespace prefix in <${name}>`)
        uri = bound
      }
      if (current === undefined && name.slice(colon + 1) === 'stream' && uri === NS_STREAM) {
        fail(BAD_FORMAT, 'stream header inside the stream')
      }

      if (current !== undefined) {
        if (text !== '') current.children.push(text)
        text = ''
        current.children.push(element)
        element.parent = current
      }
      if (selfClosing) {
        if (current === undefined) {
          at = i
          return element
        }
      } else {
        parents.push(current)
        scopes.push(scope)
        current = element
        scope = inner
      }
    }

    // Character data, up to the next tag.
    for (;;) {
      const j = run(TEXT_RUN, s, i)
      text += s.slice(i, j)
      i = j
      c = code(s, i)
      if (c === 0x3c) break
      if (c === 0x26) {
        text += reference(s, i)
        i = at
      } else if (c === 0x3e) {
        if (s.charCodeAt(i - 1) === 0x5d && s.charCodeAt(i - 2) === 0x5d) {
          fail(NWF, "']]>' in character data")
        }
        text += '>'
        i++
      } else if (c === 0x0d) {
        if (s.charCodeAt(i + 1) !== 0x0a) text += '\n'
        i++
      } else {
        const w = charWidth(s, i)
        if (w === 0) fail(NWF, 'illegal character in text')
        text += s.slice(i, i + w)
        i += w
      }
    }
  }
}
