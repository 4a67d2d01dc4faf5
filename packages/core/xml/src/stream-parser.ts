import { Element } from './element.js'
import { StreamError } from '@core/errors'

/**
 * Streaming reader for an XMPP stream (RFC 6120 §4, §11).
 *
 * A hand-written state machine that keeps its state across chunks, so bytes may be split
 * anywhere (inside a name, an attribute value, an entity, a CDATA marker or a multi-byte
 * UTF-8 character). Unfinished tokens are carried over as the unfinished piece; only a short
 * tag or element cut by a long chunk's end is read again with the next chunk (at most an
 * eighth to a quarter of that chunk), so the cost stays linear in the input size.
 *
 * Whole elements in their plainest, most common forms are read by a tighter loop (_plain)
 * that builds them directly; it refuses nothing itself and leaves any element it does not
 * read whole to the state machine, from that element's '<'.
 *
 * It enforces RFC 6120 §11 restricted XML (no DOCTYPE, comments, processing instructions or
 * entity references other than the predefined ones and character references), XML 1.0 and
 * Namespaces well-formedness (names, characters, attribute uniqueness, declared prefixes,
 * matching end tags) and size limits, and reports the first problem as a StreamError with the
 * stream error condition to send.
 */

export interface StreamParserOptions {
  /**
   * Maximum size of a top-level element (a stanza or nonza), in decoded characters (UTF-16
   * code units) from the `<` that opens it to the `>` that closes it. Also bounds the stream
   * header (counted from the start of the stream). Default 1 MiB (1_048_576).
   */
  maxStanzaSize?: number
  /** Maximum nesting depth of a stanza; the stanza itself is depth 1. Default 64. */
  maxDepth?: number
  /** Maximum number of attributes on one element, xmlns declarations included. Default 128. */
  maxAttributes?: number
}

export interface StreamParserHandlers {
  /** The `<stream:stream ...>` header's attributes (including xmlns and xmlns:stream). */
  streamStart(attrs: Record<string, string>): void
  /** Each complete top-level child of the stream (a stanza or nonza); its parent is null. */
  element(el: Element): void
  /** `</stream:stream>`: the parser is done, later input is ignored. */
  streamEnd(): void
  /** Called at most once; afterwards the parser is dead. */
  error(err: StreamError): void
}

const DEFAULT_MAX_STANZA_SIZE = 1_048_576
const DEFAULT_MAX_DEPTH = 64
const DEFAULT_MAX_ATTRIBUTES = 128

const STREAMS_NS = 'http://etherx.jabber.org/streams'
const XML_NS = 'http://www.w3.org/XML/1998/namespace'
const XMLNS_NS = 'http://www.w3.org/2000/xmlns/'

const NOT_WELL_FORMED = 'not-well-formed'
const RESTRICTED_XML = 'restricted-xml'
const POLICY_VIOLATION = 'policy-violation'
const BAD_FORMAT = 'bad-format'

// Tokenizer states.
const PROLOG = 0 // before the stream header: whitespace, then '<'
const TEXT0 = 1 // between top-level elements: whitespace only
const TEXT = 2 // character data inside a stanza
const LT = 3 // after '<'
const START_NAME = 4 // in a start tag's name
const IN_TAG = 5 // in a start tag, after the name or an attribute value
const ATTR_NAME = 6
const ATTR_EQ = 7 // after an attribute name, before '='
const ATTR_QUOTE = 8 // after '=', before the opening quote
const ATTR_VALUE = 9
const EMPTY_GT = 10 // after '/' in a start tag
const END_START = 11 // after '</'
const END_NAME = 12
const END_GT = 13 // after an end tag's name, before '>'
const ENT = 14 // after '&'
const ENT_NAME = 15
const CHARREF = 16 // after '&#'
const CHARREF_DEC = 17
const CHARREF_HEX = 18
const BANG = 19 // after '<!'
const BANG_DASH = 20 // after '<!-'
const CDATA_OPEN = 21 // matching 'CDATA['
const CDATA = 22
const XMLDECL = 23 // inside '<?' at the very start of the stream
const DEAD = 24

// ASCII name character table.
const NAME_START = 1
const NAME_CHAR = 2
const SHARED_DECODER = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const ASCII_NAME = new Uint8Array(128)
for (let c = 0; c < 128; c++) {
  const start =
    (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f /* _ */ || c === 0x3a /* : */
  const name = start || (c >= 0x30 && c <= 0x39) || c === 0x2d /* - */ || c === 0x2e /* . */
  ASCII_NAME[c] = (start ? NAME_START : 0) | (name ? NAME_CHAR : 0)
}

/** XML 1.0 (5th ed.) NameStartChar, for a BMP code unit >= 0x80 that is not a surrogate. */
function isNameStartBmp(c: number): boolean {
  return (
    (c >= 0xc0 && c <= 0xd6) ||
    (c >= 0xd8 && c <= 0xf6) ||
    (c >= 0xf8 && c <= 0x2ff) ||
    (c >= 0x370 && c <= 0x37d) ||
    (c >= 0x37f && c <= 0x1fff) ||
    c === 0x200c ||
    c === 0x200d ||
    (c >= 0x2070 && c <= 0x218f) ||
    (c >= 0x2c00 && c <= 0x2fef) ||
    (c >= 0x3001 && c <= 0xd7ff) ||
    (c >= 0xf900 && c <= 0xfdcf) ||
    (c >= 0xfdf0 && c <= 0xfffd)
  )
}

function isNameCharBmp(c: number): boolean {
  return (
    isNameStartBmp(c) || c === 0xb7 || (c >= 0x300 && c <= 0x36f) || c === 0x203f || c === 0x2040
  )
}

/** Width (1 or 2 code units) of the NameStartChar at s[i], or 0 when there is none. */
function nameStartWidth(s: string, i: number): number {
  const c = s.charCodeAt(i)
  if (c < 0x80) return (ASCII_NAME[c]! & NAME_START) !== 0 ? 1 : 0
  if (c >= 0xd800 && c <= 0xdb7f) {
    // U+10000..U+EFFFF
    const d = s.charCodeAt(i + 1)
    return d >= 0xdc00 && d <= 0xdfff ? 2 : 0
  }
  return isNameStartBmp(c) ? 1 : 0
}

/** Index of the first code unit at or after i (bounded by end) that does not continue a Name. */
function scanName(s: string, i: number, end: number): number {
  for (; i < end; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) {
      if ((ASCII_NAME[c]! & NAME_CHAR) === 0) return i
    } else if (c >= 0xd800 && c <= 0xdb7f) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) i++
      else return i
    } else if (!isNameCharBmp(c)) {
      return i
    }
  }
  return i
}

/** A QName's prefix is valid when it has at most one colon with a non-empty NCName on both sides. */
function validQName(name: string, colon: number): boolean {
  return (
    colon > 0 &&
    colon < name.length - 1 &&
    name.indexOf(':', colon + 1) === -1 &&
    nameStartWidth(name, colon + 1) !== 0
  )
}

// Element and attribute names repeat from stanza to stanza: a small cache returns the same
// (internalized) string for the same name. That saves slicing the name, and makes the stores on
// the attrs object fast (V8 keys objects by internalized strings). A name is looked up by its
// first three characters (the third may be the one that ends it), in a half of the cache for
// element names or for attribute names, and checked against the input in the same pass that
// finds its end: a hit reads each character once.
const NAME_CACHE_HALF = 1024
const NAME_CACHE: string[] = new Array<string>(2 * NAME_CACHE_HALF).fill('')
const NAME_CACHE_FLAGS = new Uint8Array(2 * NAME_CACHE_HALF)
/** readName()'s half of the cache for element names and for attribute names. */
const ELEMENT_NAMES = 0
const ATTRIBUTE_NAMES = NAME_CACHE_HALF
/** Flag of a name that needs the slow path of _open: a prefixed name, or `__proto__`. */
const SPECIAL_NAME = 1

function nameFlags(name: string): number {
  return name.indexOf(':') !== -1 || name === '__proto__' ? SPECIAL_NAME : 0
}

/**
 * readName()'s flags out-parameter, shared: it is read right after each call (a tag's flags
 * are kept per parser as a number, since a tag may span chunks).
 */
const NAME_FLAGS = new Uint8Array(1)

/**
 * The Name starting at s[i] (a NameStartChar), or '' when it is not finished before `end`.
 * Its flags are stored in flagsOut[0]. `half` is ELEMENT_NAMES or ATTRIBUTE_NAMES.
 */
function readName(s: string, i: number, end: number, flagsOut: Uint8Array, half: number): string {
  // Never read past the chunk's end: V8 deoptimises the hot loop the first time a charCodeAt
  // goes out of bounds (at a name that starts in a chunk's last two characters), and
  // recompiling it costs more than a stream's first thousand stanzas.
  const c1 = i + 1 < end ? s.charCodeAt(i + 1) : 0
  const c2 = i + 2 < end ? s.charCodeAt(i + 2) : 0
  const h = half + ((s.charCodeAt(i) * 961 + c1 * 31 + c2) & (NAME_CACHE_HALF - 1))
  const cached = NAME_CACHE[h]!
  const n = cached.length
  if (n !== 0 && i + n < end) {
    // The cached name, unless the input's name goes on (`mechanism` read in `mechanisms`).
    const d = s.charCodeAt(i + n)
    if (d < 0x80 && (ASCII_NAME[d]! & NAME_CHAR) === 0 && s.startsWith(cached, i)) {
      flagsOut[0] = flagsOut[0]! | NAME_CACHE_FLAGS[h]!
      return cached
    }
  }
  const j = scanName(s, i, end)
  if (j >= end) return ''
  let name = s.slice(i, j)
  const flags = nameFlags(name)
  if (j - i <= 32) {
    name = Object.keys({ [name]: 0 })[0]!
    NAME_CACHE[h] = name
    NAME_CACHE_FLAGS[h] = flags
  }
  flagsOut[0] = flagsOut[0]! | flags
  return name
}

function isDuplicate(
  names: string[],
  k: number,
  name: string,
  attrs: Record<string, string>,
): boolean {
  if (k >= 8) return Object.hasOwn(attrs, name)
  for (let j = 0; j < k; j++) if (names[j] === name) return true
  return false
}

/**
 * Namespaces in XML 1.0 §3: the xml and xmlns namespace names may not be declared, neither
 * for another prefix nor as the default namespace (only `xml` is bound, and implicitly).
 */
function isReservedNs(uri: string): boolean {
  return (uri.length === 36 && uri === XML_NS) || (uri.length === 29 && uri === XMLNS_NS)
}

/**
 * The predefined entity (XML 1.0 §4.6) whose name starts at s[i] and whose ';' comes before
 * `end`: its length with the ';', times 256, plus its character; 0 for anything else, which the
 * state machine then reads (other entities, character references, a reference cut by the
 * chunk's end).
 */
function predefinedEntity(s: string, i: number, end: number): number {
  if (i >= end) return 0
  switch (s.charCodeAt(i)) {
    case 0x6c: // lt;
      return i + 2 < end && s.charCodeAt(i + 1) === 0x74 && s.charCodeAt(i + 2) === 0x3b ? 0x33c : 0
    case 0x67: // gt;
      return i + 2 < end && s.charCodeAt(i + 1) === 0x74 && s.charCodeAt(i + 2) === 0x3b ? 0x33e : 0
    case 0x61: // amp; apos;
      if (i + 3 < end && s.charCodeAt(i + 1) === 0x6d) {
        return s.charCodeAt(i + 2) === 0x70 && s.charCodeAt(i + 3) === 0x3b ? 0x426 : 0
      }
      return i + 4 < end &&
        s.charCodeAt(i + 1) === 0x70 &&
        s.charCodeAt(i + 2) === 0x6f &&
        s.charCodeAt(i + 3) === 0x73 &&
        s.charCodeAt(i + 4) === 0x3b
        ? 0x527
        : 0
    case 0x71: // quot;
      return i + 4 < end &&
        s.charCodeAt(i + 1) === 0x75 &&
        s.charCodeAt(i + 2) === 0x6f &&
        s.charCodeAt(i + 3) === 0x74 &&
        s.charCodeAt(i + 4) === 0x3b
        ? 0x522
        : 0
    default:
      return 0
  }
}

function isXmlChar(v: number): boolean {
  return (
    v === 0x9 ||
    v === 0xa ||
    v === 0xd ||
    (v >= 0x20 && v <= 0xd7ff) ||
    (v >= 0xe000 && v <= 0xfffd) ||
    (v >= 0x10000 && v <= 0x10ffff)
  )
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d
}

function isLocalStream(name: string, colon: number): boolean {
  return colon === -1 ? name === 'stream' : name.length - colon === 7 && name.endsWith('stream')
}

// Runs of characters that need no attention in character data, in attribute values and in
// CDATA sections. What stops them: markup and quote delimiters, '\r' (end-of-line handling),
// '\t' and '\n' in attribute values (normalised to spaces), characters XML does not allow, and
// surrogates (checked for pairing by the caller).
const TEXT_RUN = /[^<&>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]*/y
const CDATA_RUN = /[^>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]*/y
const APOS_RUN = /[^'<&\x00-\x1f\ud800-\udfff\ufffe\uffff]*/y
const QUOT_RUN = /[^"<&\x00-\x1f\ud800-\udfff\ufffe\uffff]*/y

const XML_DECL =
  /^xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(?:"1\.[0-9]+"|'1\.[0-9]+')(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(?:"([A-Za-z][A-Za-z0-9._-]*)"|'([A-Za-z][A-Za-z0-9._-]*)'))?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(?:"(?:yes|no)"|'(?:yes|no)'))?[ \t\r\n]*$/

function positiveInt(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`${what} must be a positive integer`)
  return value
}

/** Per-tag scratch arrays of a reader, lent by the pool while a chunk is parsed. */
interface Scratch {
  stack: (Element | null)[]
  attrNames: string[]
  attrValues: string[]
  nsMarks: number[]
}
/** What an idle reader points at; never written (a reader borrows a set before parsing). */
const NO_SCRATCH: Readonly<Scratch> = Object.freeze({
  stack: Object.freeze([]) as unknown as (Element | null)[],
  attrNames: Object.freeze([]) as unknown as string[],
  attrValues: Object.freeze([]) as unknown as string[],
  nsMarks: Object.freeze([]) as unknown as number[],
})
const SCRATCH_POOL: Scratch[] = []
/** What a reader's declaration log points at while nothing is declared; never written. */
const NO_NS_LOG = Object.freeze([]) as unknown as string[]

/**
 * Longest tag cut by a chunk's end that is read again with the next chunk (see _chunkEnd), in
 * UTF-16 code units; it must also be at most a quarter of the chunk, so reading it twice costs
 * little whatever the chunk sizes.
 */
const REREAD_MAX = 1024
/**
 * Longest element cut by a chunk's end that _plain has read again with the next chunk, in
 * UTF-16 code units; at most an eighth of the chunk.
 */
const CARRY_MAX = 4096
/** _plainElement's answers other than an index: see there. */
const PLAIN_DEAD = -1
const PLAIN_NO = -2
const PLAIN_CUT = -3
const ENCODER = new TextEncoder()
const SCRATCH_POOL_MAX = 16

/**
 * Node's buffer module, when there is one (the reader also runs where there is none). Its
 * ASCII and UTF-8 checks and its UTF-8 to UTF-16 transcoder are native: V8's own UTF-8 decoder
 * takes several nanoseconds a byte on everything after the first non-ASCII character of a
 * chunk, so a chunk with a single "Café" in it decoded several times slower than an ASCII one.
 */
const NODE_BUFFER = (
  globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }
).process?.getBuiltinModule?.('node:buffer') as typeof import('node:buffer') | undefined
const FAST_UTF8 =
  typeof NODE_BUFFER?.isAscii === 'function' &&
  typeof NODE_BUFFER.isUtf8 === 'function' &&
  typeof NODE_BUFFER.transcode === 'function'
/** Below this many bytes, a chunk is decoded by the TextDecoder alone (the checks cost more). */
const FAST_UTF8_MIN = 512

/**
 * The string of b, which holds only complete UTF-8 sequences; throws at invalid UTF-8, as the
 * fatal decoder does. A large chunk that is not pure ASCII is checked and transcoded natively.
 */
function decodeUtf8(decoder: typeof SHARED_DECODER, b: Uint8Array): string {
  if (!FAST_UTF8 || b.length < FAST_UTF8_MIN) return decoder.decode(b)
  const buffer = NODE_BUFFER!
  if (buffer.isAscii(b) || !buffer.isUtf8(b)) return decoder.decode(b)
  // UTF-8 to UTF-16LE code units, which is what a JS string holds; a BOM is kept, as with
  // ignoreBOM (only the stream's first character may be one to drop: _feed does that).
  return buffer.transcode(b, 'utf8', 'utf16le').toString('utf16le')
}

/** Length of the UTF-8 sequence a valid lead byte starts (0 for an invalid lead byte). */
function utf8SequenceLength(b: number): number {
  if (b >= 0xc2 && b <= 0xdf) return 2
  if (b >= 0xe0 && b <= 0xef) return 3
  if (b >= 0xf0 && b <= 0xf4) return 4
  return 0
}

/**
 * End of the longest run of complete, valid UTF-8 sequences (RFC 3629 §4: no overlong forms, no
 * surrogates, nothing above U+10FFFF) in b from i to end. With `partial`, a sequence that is
 * valid so far but cut off by `end` counts too.
 */
function validUtf8Prefix(b: Uint8Array, i: number, end: number, partial: boolean): number {
  while (i < end) {
    const x = b[i]!
    if (x < 0x80) {
      i++
      continue
    }
    const n = utf8SequenceLength(x)
    if (n === 0) return i
    // The second byte's range excludes overlong forms, surrogates and code points > U+10FFFF.
    const lo = x === 0xe0 ? 0xa0 : x === 0xf0 ? 0x90 : 0x80
    const hi = x === 0xed ? 0x9f : x === 0xf4 ? 0x8f : 0xbf
    for (let k = 1; k < n; k++) {
      if (i + k >= end) return partial ? end : i
      const y = b[i + k]!
      if (k === 1 ? y < lo || y > hi : (y & 0xc0) !== 0x80) return i
    }
    i += n
  }
  return i
}

export class StreamParser {
  private readonly _h: StreamParserHandlers
  private readonly _maxSize: number
  private readonly _maxDepth: number
  private readonly _maxAttrs: number

  // Decoding. A fatal decoder is used on slices that hold only complete UTF-8 sequences (the
  // bytes of an unfinished sequence at the end of a chunk are held back in _pendBytes), which is
  // equivalent to `{ stream: true }` decoding but takes Node's fast path.
  // Decoding is stateless here (split sequences are held back by hand), so every parser shares
  // one decoder: a TextDecoder per connection costs native memory (idle clients add up).
  private readonly _decoder = SHARED_DECODER
  private _pendBytes: Uint8Array | null = null
  private _badUtf8 = false // _decode stopped at an invalid sequence
  private _heldHigh = '' // a high surrogate ending a string chunk, waiting for its pair
  private _bomChecked = false

  private _dead = false
  private _busy = false
  private _queue: (Uint8Array | string)[] | undefined = undefined // writes from handlers
  private _thrown: { error: unknown } | undefined = undefined

  // Tokenizer state carried between chunks.
  private _state = PROLOG
  private _acc = '' // unfinished name, entity name or XML declaration
  private _attrAcc = '' // unfinished attribute value
  private _text = '' // character data of the current element not yet added to its children
  private _quote = 0
  private _sawSpace = false
  private _entReturn = TEXT
  private _charVal = 0
  private _charDigits = 0
  private _matchPos = 0 // position in 'CDATA[' or in the XML declaration
  private _cdataPend = '' // ']' or ']]' that may start a CDATA section's end marker
  private _textBrackets = 0 // ']' count at the end of the previous chunk's character data
  private _declQ = false // previous chunk ended with '?' inside the XML declaration
  private _pendingCR = false // previous chunk ended with '\r' inside data: drop a leading '\n'
  private _declAllowed = true
  private _tok = 0 // _rare's tokStart, handed back to _parse
  private _carry = '' // a tag cut by the previous chunk's end, read again (_chunkEnd)

  // Size limit: while _inLimit, the current top-level element may use up to _limitAt (an index
  // in the current chunk) characters.
  private _inLimit = true
  private _limitAt = 0
  private _remaining: number

  // Tree state.
  private _headerDone = false
  private _headerName = ''
  private _defaultNs: string | undefined = undefined
  private _depth = 0
  private _cur: Element | null = null
  private _stack: (Element | null)[] = NO_SCRATCH.stack
  private _tagName = ''
  private _attrName = ''
  private _attrNames: string[] = NO_SCRATCH.attrNames
  private _attrValues: string[] = NO_SCRATCH.attrValues
  private _nAttrs = 0
  private _special = 0 // SPECIAL_NAME: the tag has a prefixed or unusual name
  // Namespace prefixes in scope (Namespaces in XML 1.0 §6.1): the innermost binding of each
  // prefix, so a lookup costs the same however many are declared. _nsPrefixes/_nsHidden log
  // the declarations (and the binding each one hid, '' for none) to undo them as elements end.
  // The map and the log exist only while a stanza's declarations are in scope (or when the
  // header declares many prefixes); the header's few live in _headerNs (idle readers add up).
  private _nsScope: Map<string, string> | undefined = undefined
  private _nsPrefixes: string[] = NO_NS_LOG
  private _nsHidden: string[] = NO_NS_LOG
  private _nsLen = 0
  /** The stream header's prefix bindings, as [prefix, uri, prefix, uri, ...] (a few at most). */
  private _headerNs: readonly string[] = NO_NS_LOG
  private _nsMarks: number[] = NO_SCRATCH.nsMarks

  constructor(handlers: StreamParserHandlers, options: StreamParserOptions = {}) {
    this._h = handlers
    this._maxSize = positiveInt(options.maxStanzaSize, DEFAULT_MAX_STANZA_SIZE, 'maxStanzaSize')
    this._maxDepth = positiveInt(options.maxDepth, DEFAULT_MAX_DEPTH, 'maxDepth')
    this._maxAttrs = positiveInt(options.maxAttributes, DEFAULT_MAX_ATTRIBUTES, 'maxAttributes')
    this._remaining = this._maxSize
    // V8 takes a field for a constant until it is written again, and throws away code compiled
    // on that assumption once it is: the fields first rewritten at the end of a chunk cut inside
    // a stanza, which came while _parse was being compiled for the first time. Written once
    // more here, they are known to change before anything is compiled.
    this._carry = this._acc = this._attrAcc = this._text = ' '
    this._carry = this._acc = this._attrAcc = this._text = ''
    this._textBrackets = this._limitAt = this._tok = this._quote = 1
    this._textBrackets = this._limitAt = this._tok = this._quote = 0
    this._pendingCR = true
    this._pendingCR = this._inLimit = false
    this._inLimit = true
  }

  /**
   * true between top-level elements (after the stream header, nothing of an element pending):
   * a framing that carries one element per message checks it after each message.
   */
  get betweenElements(): boolean {
    return (
      this._state === TEXT0 && this._acc === '' && this._pendBytes === null && this._carry === ''
    )
  }

  /** true once the parser ignores input: after stop(), an error, or the end of the stream. */
  get stopped(): boolean {
    return this._dead
  }

  /** Discard the parser: the current write() returns right away and later writes are ignored. */
  stop(): void {
    this._dead = true
    this._state = DEAD
    this._queue = undefined
  }

  /**
   * Feed bytes (or already decoded text). Bad input is reported through handlers.error, never
   * thrown. If a handler throws, parsing of the chunk still completes and the first exception is
   * rethrown when write() returns. A write() from inside a handler is queued and processed after
   * the current chunk.
   */
  write(chunk: Uint8Array | string): void {
    if (this._dead) return
    if (this._busy) {
      if (this._queue === undefined) this._queue = [chunk]
      else this._queue.push(chunk)
      return
    }
    this._busy = true
    if (this._stack === NO_SCRATCH.stack) this._borrow()
    try {
      this._feed(chunk)
      const queue = this._queue
      if (queue !== undefined) {
        while (queue.length > 0 && !this._dead) this._feed(queue.shift()!)
        this._queue = undefined
      }
    } finally {
      this._busy = false
      if (this._dead) this._queue = undefined
    }
    if (this._state === TEXT0 || this._dead) this._release()
    const thrown = this._thrown
    if (thrown !== undefined) {
      this._thrown = undefined
      throw thrown.error
    }
  }

  /** Takes a set of scratch arrays for the chunk about to be parsed. */
  private _borrow(): void {
    const set = SCRATCH_POOL.pop()
    this._stack = set?.stack ?? []
    this._attrNames = set?.attrNames ?? []
    this._attrValues = set?.attrValues ?? []
    this._nsMarks = set?.nsMarks ?? []
  }

  /**
   * Between top-level elements after a chunk (or once dead), nothing in the per-tag scratch
   * arrays is needed any more: they go back to a pool shared by every reader, emptied of the
   * last stanza's strings (slices that would keep the whole decoded chunk alive). An idle
   * connection then holds none (idle connections add up), and a busy one takes a set per
   * chunk, not per stanza: truncating the arrays instead cost a fifth of recv throughput.
   * The declaration log past _nsLen belonged to elements that ended; it is dropped too (it only
   * grows past the header's when a stanza declares prefixes).
   */
  private _release(): void {
    if (this._stack !== NO_SCRATCH.stack) {
      this._attrValues.fill('')
      this._attrNames.fill('')
      this._stack.fill(null)
      if (SCRATCH_POOL.length < SCRATCH_POOL_MAX) {
        SCRATCH_POOL.push({
          stack: this._stack,
          attrNames: this._attrNames,
          attrValues: this._attrValues,
          nsMarks: this._nsMarks,
        })
      }
      this._stack = NO_SCRATCH.stack
      this._attrNames = NO_SCRATCH.attrNames
      this._attrValues = NO_SCRATCH.attrValues
      this._nsMarks = NO_SCRATCH.nsMarks
    }
    if (this._nsLen === 0) {
      if (this._nsScope !== undefined) {
        this._nsScope = undefined
        this._nsPrefixes = NO_NS_LOG
        this._nsHidden = NO_NS_LOG
      }
    } else if (this._nsPrefixes.length > this._nsLen) {
      this._nsPrefixes = this._nsPrefixes.slice(0, this._nsLen)
      this._nsHidden = this._nsHidden.slice(0, this._nsLen)
    }
  }

  private _feed(chunk: Uint8Array | string): void {
    let s: string
    const carry = this._carry
    if (carry !== '') {
      this._carry = ''
      if (typeof chunk !== 'string') {
        // Decoded with the new bytes (and before any bytes held back from the previous chunk,
        // which came after the tag's start), so that _parse gets one flat string.
        const pend = this._pendBytes
        const head = ENCODER.encode(carry)
        const np = pend === null ? 0 : pend.length
        const merged = new Uint8Array(head.length + np + chunk.length)
        merged.set(head)
        if (pend !== null) merged.set(pend, head.length)
        merged.set(chunk, head.length + np)
        this._pendBytes = null
        chunk = merged
      }
    }
    if (typeof chunk === 'string') {
      s = chunk
      if (this._heldHigh !== '') {
        s = this._heldHigh + s
        this._heldHigh = ''
      }
      if (carry !== '') s = carry + s
      const n = s.length
      if (n > 0) {
        const last = s.charCodeAt(n - 1)
        if (last >= 0xd800 && last <= 0xdbff) {
          this._heldHigh = s.slice(n - 1)
          s = s.slice(0, n - 1)
        }
      }
    } else {
      s = this._decode(chunk)
    }
    if (s.length !== 0 && !this._bomChecked) {
      this._bomChecked = true
      if (s.charCodeAt(0) === 0xfeff) s = s.slice(1)
    }
    if (s.length !== 0) this._parse(s)
    if (this._badUtf8) {
      // After what preceded the bad bytes (which may have ended the stream, or failed first).
      this._badUtf8 = false
      this._fail(NOT_WELL_FORMED, 'invalid UTF-8')
    }
  }

  /**
   * Decodes the complete UTF-8 sequences of b (with held-back bytes). At an invalid sequence
   * it returns what precedes it and sets _badUtf8: the caller parses that first, so the
   * outcome does not depend on where the chunks were cut.
   */
  private _decode(b: Uint8Array): string {
    const n = b.length
    let start = 0
    let head = ''
    const pend = this._pendBytes
    if (pend !== null) {
      const need = utf8SequenceLength(pend[0]!) - pend.length
      const take = Math.min(need, n)
      const merged = new Uint8Array(pend.length + take)
      merged.set(pend)
      merged.set(b.subarray(0, take), pend.length)
      if (take < need) {
        if (validUtf8Prefix(merged, 0, merged.length, true) !== merged.length)
          return this._badSequence('')
        this._pendBytes = merged
        return ''
      }
      this._pendBytes = null
      if (validUtf8Prefix(merged, 0, merged.length, false) !== merged.length)
        return this._badSequence('')
      head = this._decoder.decode(merged)
      start = take
    }
    let stop = n
    // An unfinished sequence at the end is held back for the next chunk.
    for (let k = n - 1; k >= start && k >= n - 3; k--) {
      const x = b[k]!
      if ((x & 0xc0) === 0x80) continue
      const len = utf8SequenceLength(x)
      if (len > n - k) stop = k
      break
    }
    if (start === stop) {
      if (stop < n) this._pendBytes = b.slice(stop)
      return head
    }
    let body: string
    try {
      body = decodeUtf8(this._decoder, start === 0 && stop === n ? b : b.subarray(start, stop))
    } catch {
      // Rare: find where the valid part ends, by hand.
      const valid = validUtf8Prefix(b, start, stop, false)
      return this._badSequence(head + this._decoder.decode(b.subarray(start, valid)))
    }
    if (stop < n) this._pendBytes = b.slice(stop)
    return head === '' ? body : head + body
  }

  /** _decode met an invalid sequence after `valid`: parse that, then fail. */
  private _badSequence(valid: string): string {
    this._pendBytes = null
    this._badUtf8 = true
    return valid
  }

  private _fail(condition: string, message: string): false {
    if (!this._dead) {
      this._dead = true
      this._state = DEAD
      try {
        this._h.error(new StreamError(condition, message))
      } catch (error) {
        this._thrown ??= { error }
      }
    }
    return false
  }

  private _emit(el: Element): boolean {
    try {
      this._h.element(el)
    } catch (error) {
      this._thrown ??= { error }
    }
    return !this._dead
  }

  /** The last index of s the current size limit allows, never between a surrogate pair. */
  private _clampEnd(s: string, limitAt: number): number {
    const len = s.length
    if (limitAt >= len) return len
    if (limitAt > 0) {
      const h = s.charCodeAt(limitAt - 1)
      if (h >= 0xd800 && h <= 0xdbff) return limitAt - 1
    }
    return limitAt
  }

  private _lookup(prefix: string): string | undefined {
    const bound = this._nsScope?.get(prefix)
    if (bound !== undefined) return bound
    const header = this._headerNs
    for (let k = 0; k < header.length; k += 2) if (header[k] === prefix) return header[k + 1]
    return prefix === 'xml' ? XML_NS : undefined
  }

  private _declare(prefix: string, uri: string): void {
    const n = this._nsLen
    this._nsScope ??= new Map()
    const scope = this._nsScope
    if (this._nsPrefixes === NO_NS_LOG) {
      this._nsPrefixes = []
      this._nsHidden = []
    }
    this._nsPrefixes[n] = prefix
    // '' when nothing was hidden: undoing then falls back to the header's binding, if any.
    this._nsHidden[n] = scope.get(prefix) ?? ''
    this._nsLen = n + 1
    scope.set(prefix, uri)
  }

  /** Undoes the declarations made since the log had `mark` entries (their element ended). */
  private _undeclare(mark: number): void {
    const scope = this._nsScope!
    for (let k = this._nsLen - 1; k >= mark; k--) {
      const prefix = this._nsPrefixes[k]!
      const hidden = this._nsHidden[k]!
      if (hidden === '') scope.delete(prefix)
      else scope.set(prefix, hidden)
    }
    this._nsLen = mark
  }

  /**
   * Reads the XML declaration on from s[i] (its text started at tokStart, or in _acc). Returns
   * the index after its '?>', -2 when it goes on in the next chunk, or -1 after an error. Cold
   * code, kept out of _parse so that the hot loop stays small.
   */
  private _xmlDecl(s: string, i: number, end: number, tokStart: number): number {
    let p = this._matchPos
    for (; i < end; i++, p++) {
      const c = s.charCodeAt(i)
      if (p < 4) {
        // The target must be exactly 'xml' followed by whitespace.
        if (p < 3 ? c !== 'xml'.charCodeAt(p) : !isSpace(c)) {
          if (p === 3 && c === 0x3f) this._fail(NOT_WELL_FORMED, 'malformed XML declaration')
          else this._fail(RESTRICTED_XML, 'processing instruction')
          return -1
        }
      } else {
        // Neither '<' nor '>' belongs to a declaration, and a '?' must end it: refuse there,
        // not at a '?>' that may never come.
        const q = i > tokStart ? s.charCodeAt(i - 1) === 0x3f : this._declQ
        if (c === 0x3e && q) break
        if (q || c === 0x3e || c === 0x3c) {
          this._fail(NOT_WELL_FORMED, 'malformed XML declaration')
          return -1
        }
      }
    }
    this._matchPos = p
    if (i >= end) return -2
    const decl = this._acc + s.slice(tokStart, i)
    this._acc = ''
    const m = XML_DECL.exec(decl.slice(0, -1))
    if (m === null) {
      this._fail(NOT_WELL_FORMED, 'malformed XML declaration')
      return -1
    }
    const encoding = m[1] ?? m[2]
    if (encoding !== undefined && encoding.toLowerCase() !== 'utf-8') {
      this._fail('unsupported-encoding', `unsupported encoding ${encoding}`)
      return -1
    }
    return i + 1
  }

  private _parse(s: string): void {
    const len = s.length
    let i = 0
    let tokStart = 0
    let state = this._state
    let c = 0
    let end = len
    let tagAt = -1 // where the last tag of a stanza started in s ('<'), -1 before the first
    if (this._inLimit) {
      this._limitAt = this._remaining
      end = this._clampEnd(s, this._limitAt)
    }
    if (this._pendingCR) {
      this._pendingCR = false
      if (end > 0 && s.charCodeAt(0) === 0x0a) i = tokStart = 1
    }

    while (i < end) {
      switch (state) {
        case TEXT: {
          // Skip ordinary characters, then look at the character that stopped the run. Short
          // runs (most of them: often none at all between two tags) are scanned by hand; a
          // long one goes on with a sticky regular expression, much faster on long text but
          // dear to call for a run of a few characters.
          for (;;) {
            // (A boolean, not a second comparison: V8 deoptimises the first time a comparison it has
            // not seen yet runs, here at a chunk's end.)
            const long = end - i > 16
            const stop = long ? i + 16 : end
            for (; i < stop; i++) {
              c = s.charCodeAt(i)
              if (
                c > 0x3e
                  ? c >= 0xd800
                  : c < 0x20
                    ? c !== 0x0a && c !== 0x09
                    : c === 0x3c || c === 0x26 || c === 0x3e
              ) {
                break
              }
            }
            if (i === stop && long) {
              TEXT_RUN.lastIndex = i
              TEXT_RUN.test(s)
              i = TEXT_RUN.lastIndex
            }
            if (i >= end) break
            c = s.charCodeAt(i)
            if (c === 0x3c || c === 0x26 || c === 0x3e) break
            if (c === 0x0d) {
              // End-of-line handling: "\r\n" and "\r" become "\n".
              if (i > tokStart) this._text += s.slice(tokStart, i)
              if (s.charCodeAt(i + 1) !== 0x0a) this._text += '\n'
              i++
              tokStart = i
              continue
            }
            if (c >= 0xd800 && c <= 0xdbff) {
              const d = s.charCodeAt(i + 1)
              if (d >= 0xdc00 && d <= 0xdfff) {
                i += 2
                continue
              }
            } else if (c >= 0xe000 && c <= 0xfffd) {
              i++
              continue
            }
            this._fail(NOT_WELL_FORMED, 'illegal character in text')
            return
          }
          if (i >= end) {
            i = end
            break
          }
          if (c === 0x3e) {
            // ']]>' is not allowed in character data.
            const b1 = i >= 1 ? s.charCodeAt(i - 1) === 0x5d : this._textBrackets >= 1
            const b2 =
              i >= 2
                ? s.charCodeAt(i - 2) === 0x5d
                : i === 1
                  ? this._textBrackets >= 1
                  : this._textBrackets >= 2
            if (b1 && b2) {
              this._fail(NOT_WELL_FORMED, "']]>' in character data")
              return
            }
            i++
            continue
          }
          if (c === 0x26) {
            const e = predefinedEntity(s, i + 1, end)
            if (e !== 0) {
              const ch = String.fromCharCode(e & 0xff)
              this._text += i > tokStart ? s.slice(tokStart, i) + ch : ch
              i += 1 + (e >> 8)
              tokStart = i
              continue
            }
          }
          if (i > tokStart) this._text += s.slice(tokStart, i)
          i++
          if (c === 0x3c) {
            tagAt = i - 1
            state = LT
          } else {
            this._entReturn = TEXT
            state = ENT
          }
          continue
        }

        case TEXT0: {
          for (; i < end; i++) {
            c = s.charCodeAt(i)
            if (!(c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09)) break
          }
          if (i >= end) break
          if (c !== 0x3c) {
            this._fail(BAD_FORMAT, 'text at the stream level')
            return
          }
          // The common forms of whole elements are read by _plain; the state machine goes on
          // from the first element it did not read (or the chunk's end).
          const next = this._plain(s, i, end)
          if (next !== i) {
            if (next < 0) return
            i = next
            if (i >= end) break
            c = s.charCodeAt(i)
            if (c !== 0x3c) {
              this._fail(BAD_FORMAT, 'text at the stream level')
              return
            }
          }
          // A top-level element starts: its size is bounded from this '<'.
          this._inLimit = true
          this._limitAt = i + this._maxSize
          end = this._clampEnd(s, this._limitAt)
          tagAt = i
          i++
          state = LT
          continue
        }

        case LT: {
          c = s.charCodeAt(i)
          const w = nameStartWidth(s, i)
          if (w !== 0) {
            if (this._headerDone && this._depth >= this._maxDepth) {
              this._fail(POLICY_VIOLATION, `elements nested deeper than ${this._maxDepth}`)
              return
            }
            this._declAllowed = false
            this._nAttrs = 0
            this._special = 0
            tokStart = i
            state = START_NAME
            continue
          }
          if (c === 0x2f) {
            if (!this._headerDone) {
              this._fail(NOT_WELL_FORMED, 'end tag before the stream header')
              return
            }
            i++
            state = END_START
            continue
          }
          if (c === 0x21) {
            this._declAllowed = false
            i++
            state = BANG
            continue
          }
          if (c === 0x3f) {
            if (!this._declAllowed) {
              this._fail(RESTRICTED_XML, 'processing instruction')
              return
            }
            this._declAllowed = false
            this._matchPos = 0
            this._declQ = false
            i++
            tokStart = i
            state = XMLDECL
            continue
          }
          this._fail(NOT_WELL_FORMED, "invalid character after '<'")
          return
        }

        case START_NAME: {
          if (i === tokStart && this._acc === '') {
            NAME_FLAGS[0] = 0
            const name = readName(s, i, end, NAME_FLAGS, ELEMENT_NAMES)
            this._special |= NAME_FLAGS[0]!
            if (name === '') {
              i = end
              break
            }
            this._tagName = name
            i += name.length
          } else {
            i = scanName(s, i, end)
            if (i >= end) break
            const name = this._acc + s.slice(tokStart, i)
            this._acc = ''
            this._tagName = name
            this._special |= nameFlags(name)
          }
          c = s.charCodeAt(i)
          if (c === 0x3e) {
            i++
            if (!this._open(false)) return
            if (!this._inLimit) end = len
            state = this._depth === 0 ? TEXT0 : TEXT
            tokStart = i
            continue
          }
          if (isSpace(c)) {
            this._sawSpace = true
            state = IN_TAG
          } else if (c === 0x2f) {
            state = EMPTY_GT
          } else {
            this._fail(NOT_WELL_FORMED, 'invalid character in element name')
            return
          }
          i++
          continue
        }

        case IN_TAG: {
          for (; i < end; i++) {
            c = s.charCodeAt(i)
            if (c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d) this._sawSpace = true
            else break
          }
          if (i >= end) break
          if (c === 0x3e) {
            i++
            if (!this._open(false)) return
            if (!this._inLimit) end = len
            state = this._depth === 0 ? TEXT0 : TEXT
            tokStart = i
            continue
          }
          if (c === 0x2f) {
            i++
            state = EMPTY_GT
            continue
          }
          const w = nameStartWidth(s, i)
          if (w === 0 || !this._sawSpace) {
            this._fail(NOT_WELL_FORMED, 'invalid character in start tag')
            return
          }
          if (this._nAttrs >= this._maxAttrs) {
            this._fail(POLICY_VIOLATION, `more than ${this._maxAttrs} attributes`)
            return
          }
          tokStart = i
          state = ATTR_NAME
          continue
        }

        case ATTR_NAME: {
          if (i === tokStart && this._acc === '') {
            NAME_FLAGS[0] = 0
            const name = readName(s, i, end, NAME_FLAGS, ATTRIBUTE_NAMES)
            this._special |= NAME_FLAGS[0]!
            if (name === '') {
              i = end
              break
            }
            this._attrName = name
            i += name.length
          } else {
            i = scanName(s, i, end)
            if (i >= end) break
            const name = this._acc + s.slice(tokStart, i)
            this._acc = ''
            this._attrName = name
            this._special |= nameFlags(name)
          }
          c = s.charCodeAt(i)
          i++
          if (c === 0x3d) {
            // Fast path: '=' directly followed by the opening quote.
            if (i < end) {
              const d = s.charCodeAt(i)
              if (d === 0x27 || d === 0x22) {
                this._quote = d
                i++
                tokStart = i
                state = ATTR_VALUE
                continue
              }
            }
            state = ATTR_QUOTE
          } else if (isSpace(c)) state = ATTR_EQ
          else {
            this._fail(NOT_WELL_FORMED, 'invalid character in attribute name')
            return
          }
          continue
        }

        case ATTR_VALUE: {
          const q = this._quote
          for (;;) {
            // Short values are quicker to scan by hand, long ones with a regular expression.
            const long = end - i > 24
            const stop = long ? i + 24 : end
            for (; i < stop; i++) {
              c = s.charCodeAt(i)
              if (c > 0x3c ? c >= 0xd800 : c < 0x20 || c === q || c === 0x3c || c === 0x26) break
            }
            if (i === stop && long) {
              const run = q === 0x27 ? APOS_RUN : QUOT_RUN
              run.lastIndex = i
              run.test(s)
              i = run.lastIndex
            }
            if (i >= end) break
            c = s.charCodeAt(i)
            if (c === q || c === 0x3c || c === 0x26) break
            if (c === 0x09 || c === 0x0a) {
              // Attribute-value normalisation: literal whitespace becomes a space.
              this._attrAcc += i > tokStart ? `${s.slice(tokStart, i)} ` : ' '
              i++
              tokStart = i
              continue
            }
            if (c === 0x0d) {
              if (i > tokStart) this._attrAcc += s.slice(tokStart, i)
              // "\r\n" is one line break: the '\n' that follows becomes the space.
              if (s.charCodeAt(i + 1) !== 0x0a) this._attrAcc += ' '
              i++
              tokStart = i
              continue
            }
            if (c >= 0xd800 && c <= 0xdbff) {
              const d = s.charCodeAt(i + 1)
              if (d >= 0xdc00 && d <= 0xdfff) {
                i += 2
                continue
              }
            } else if (c >= 0xe000 && c <= 0xfffd) {
              i++
              continue
            }
            this._fail(NOT_WELL_FORMED, 'illegal character in attribute value')
            return
          }
          if (i >= end) {
            i = end
            break
          }
          if (c === q) {
            let value: string
            if (this._attrAcc === '') {
              value = s.slice(tokStart, i)
            } else {
              value = this._attrAcc + s.slice(tokStart, i)
              this._attrAcc = ''
            }
            const n = this._nAttrs
            this._attrNames[n] = this._attrName
            this._attrValues[n] = value
            this._nAttrs = n + 1
            this._sawSpace = false
            i++
            state = IN_TAG
            continue
          }
          if (c === 0x3c) {
            this._fail(NOT_WELL_FORMED, "'<' in attribute value")
            return
          }
          const e = predefinedEntity(s, i + 1, end)
          if (e !== 0) {
            const ch = String.fromCharCode(e & 0xff)
            this._attrAcc += i > tokStart ? s.slice(tokStart, i) + ch : ch
            i += 1 + (e >> 8)
            tokStart = i
            continue
          }
          if (i > tokStart) this._attrAcc += s.slice(tokStart, i)
          i++
          this._entReturn = ATTR_VALUE
          state = ENT
          continue
        }

        case EMPTY_GT: {
          if (s.charCodeAt(i) !== 0x3e) {
            this._fail(NOT_WELL_FORMED, "expected '>' after '/'")
            return
          }
          i++
          if (!this._open(true)) return
          if (!this._inLimit) end = len
          state = this._depth === 0 ? TEXT0 : TEXT
          tokStart = i
          continue
        }

        case END_START: {
          // Fast path: the expected name followed by '>' (the common case). What decides
          // between the paths is computed on every end tag: a comparison V8 first meets after
          // compiling _parse (here, at an end tag cut by the chunk's end) would deoptimise it.
          const expected = this._depth > 0 ? this._cur!.name : this._headerName
          const n = expected.length
          const lim = Math.min(end - i, n)
          let k = 0
          while (k < lim && expected.charCodeAt(k) === s.charCodeAt(i + k)) k++
          // -1: the chunk ended after k matching characters.
          const next = i + k < end ? s.charCodeAt(i + k) : -1
          const cut = next === -1
          if (k === n && next === 0x3e) {
            i += n + 1
            if (!this._close()) return
            if (!this._inLimit) end = len
            state = this._depth === 0 ? TEXT0 : TEXT
            tokStart = i
            continue
          }
          tokStart = i
          state = END_NAME
          if (cut) {
            // END_NAME goes on with the next chunk (usually _chunkEnd has the tag read again
            // instead): not through _rare, whose first call would deoptimise _parse too.
            i = end
            break
          }
          // Not the expected name, or not followed by '>': _rare reads it (END_NAME).
          continue
        }

        default: {
          // DEAD, or a rare state (_rare)
          if (state === DEAD) return
          this._state = state
          i = this._rare(s, i, end, tokStart)
          if (i < 0) return
          state = this._state
          tokStart = this._tok
          if (!this._inLimit) end = len
          continue
        }
      }
    }

    if (this._dead) return
    if (i < len) {
      this._fail(POLICY_VIOLATION, `element larger than ${this._maxSize} characters`)
      return
    }

    this._chunkEnd(s, state, tokStart, tagAt)
  }

  /**
   * At the end of a chunk: keep the unfinished token. A tag cut by the chunk's end (the usual
   * case: tags make most of a stream) is instead read again from its '<' with the next chunk,
   * when that costs little (a short tag in a long chunk): what it has left behind is undone
   * here. That brings every chunk after the first to _parse at a tag's start, in the same
   * state, so the hot loop never resumes inside a tag: such paths, taken for the first time
   * after V8 compiled _parse, each cost a deoptimisation and a recompilation of the hot
   * loop, which made most of the cost of a stream's first megabytes.
   */
  private _chunkEnd(s: string, state: number, tokStart: number, tagAt: number): void {
    const len = s.length
    if (tagAt >= 0 && len - tagAt <= REREAD_MAX && (len - tagAt) * 4 <= len) {
      const inTag =
        (state >= LT && state <= END_GT) ||
        (state >= ENT && state <= CHARREF_HEX && this._entReturn === ATTR_VALUE)
      if (inTag) {
        // The tag's partial state: names, attributes, an unfinished value or reference.
        this._carry = s.slice(tagAt)
        this._acc = ''
        this._attrAcc = ''
        this._nAttrs = 0
        this._special = 0
        this._pendingCR = false
        this._textBrackets = 0
        if (this._depth === 0) {
          this._state = TEXT0
          this._inLimit = false
        } else {
          this._state = TEXT
          this._remaining = this._limitAt - tagAt
        }
        return
      }
    }
    this._state = state
    switch (state) {
      case TEXT: {
        if (len > tokStart) this._text += s.slice(tokStart, len)
        let b = 0
        if (s.charCodeAt(len - 1) === 0x5d) {
          b = len >= 2 ? (s.charCodeAt(len - 2) === 0x5d ? 2 : 1) : this._textBrackets >= 1 ? 2 : 1
        }
        this._textBrackets = b
        this._pendingCR = s.charCodeAt(len - 1) === 0x0d
        break
      }
      case ATTR_VALUE:
        if (len > tokStart) this._attrAcc += s.slice(tokStart, len)
        this._pendingCR = s.charCodeAt(len - 1) === 0x0d
        break
      case CDATA: {
        const pend = this._cdataPend
        const t = pend === '' ? s.slice(tokStart, len) : pend + s.slice(tokStart, len)
        const q = t.endsWith(']]') ? 2 : t.endsWith(']') ? 1 : 0
        if (t.length > q) this._text += q === 0 ? t : t.slice(0, t.length - q)
        this._cdataPend = q === 0 ? '' : q === 1 ? ']' : ']]'
        this._pendingCR = s.charCodeAt(len - 1) === 0x0d
        break
      }
      case START_NAME:
      case ATTR_NAME:
      case END_NAME:
      case ENT_NAME:
        if (len > tokStart) this._acc += s.slice(tokStart, len)
        break
      case XMLDECL:
        if (len > tokStart) {
          this._acc += s.slice(tokStart, len)
          this._declQ = s.charCodeAt(len - 1) === 0x3f
        }
        break
      default:
        break
    }
    if (this._inLimit) this._remaining = this._limitAt - len
  }

  /**
   * The states a stream rarely enters (references other than the predefined entities, CDATA
   * sections, markup after '<!', the prolog and the XML declaration), kept out of _parse so
   * that the hot loop stays small: V8 compiles a small function sooner and much faster, and
   * a stream's first megabytes run while _parse is being compiled (and recompiled after each
   * deoptimisation). Goes on from s[i] in this._state until the state is a common one or the
   * chunk ends; returns the index to go on from (this._state and this._tok updated), or -1
   * once the parser is dead.
   */
  private _rare(s: string, i: number, end: number, tokStart: number): number {
    let state = this._state
    let c = 0
    while (i < end) {
      switch (state) {
        case ENT: {
          c = s.charCodeAt(i)
          if (c === 0x23) {
            i++
            state = CHARREF
            continue
          }
          const w = nameStartWidth(s, i)
          if (w === 0) {
            this._fail(NOT_WELL_FORMED, "'&' not starting a reference")
            return -1
          }
          tokStart = i
          i += w
          state = ENT_NAME
          continue
        }

        case ENT_NAME: {
          i = scanName(s, i, end)
          // The predefined entities have at most 4 letters: anything longer is another entity.
          if (this._acc.length + (i - tokStart) > 4) {
            this._fail(RESTRICTED_XML, 'entity reference')
            return -1
          }
          if (i >= end) break
          if (s.charCodeAt(i) !== 0x3b) {
            this._fail(NOT_WELL_FORMED, "'&' not starting a reference")
            return -1
          }
          const name = this._acc + s.slice(tokStart, i)
          this._acc = ''
          const ch =
            name === 'amp'
              ? '&'
              : name === 'lt'
                ? '<'
                : name === 'gt'
                  ? '>'
                  : name === 'quot'
                    ? '"'
                    : name === 'apos'
                      ? "'"
                      : ''
          if (ch === '') {
            this._fail(RESTRICTED_XML, `entity reference &${name};`)
            return -1
          }
          i++
          tokStart = i
          if (this._entReturn === TEXT) {
            this._text += ch
            state = TEXT
          } else {
            this._attrAcc += ch
            state = ATTR_VALUE
          }
          continue
        }

        case CHARREF: {
          c = s.charCodeAt(i)
          if (c === 0x78) {
            this._charVal = 0
            this._charDigits = 0
            state = CHARREF_HEX
          } else if (c >= 0x30 && c <= 0x39) {
            this._charVal = c - 0x30
            this._charDigits = 1
            state = CHARREF_DEC
          } else {
            this._fail(NOT_WELL_FORMED, 'invalid character reference')
            return -1
          }
          i++
          continue
        }

        case CHARREF_DEC:
        case CHARREF_HEX: {
          const hex = state === CHARREF_HEX
          let v = this._charVal
          let digits = this._charDigits
          for (; i < end; i++) {
            c = s.charCodeAt(i)
            let d: number
            if (c >= 0x30 && c <= 0x39) d = c - 0x30
            else if (hex && c >= 0x61 && c <= 0x66) d = c - 0x57
            else if (hex && c >= 0x41 && c <= 0x46) d = c - 0x37
            else break
            v = hex ? v * 16 + d : v * 10 + d
            digits++
            if (v > 0x10ffff) {
              this._fail(NOT_WELL_FORMED, 'character reference out of range')
              return -1
            }
          }
          this._charVal = v
          this._charDigits = digits
          if (i >= end) break
          if (c !== 0x3b || digits === 0) {
            this._fail(NOT_WELL_FORMED, 'invalid character reference')
            return -1
          }
          if (!isXmlChar(v)) {
            this._fail(NOT_WELL_FORMED, `character reference to an illegal character (${v})`)
            return -1
          }
          const ch = String.fromCodePoint(v)
          i++
          tokStart = i
          if (this._entReturn === TEXT) {
            this._text += ch
            state = TEXT
          } else {
            this._attrAcc += ch
            state = ATTR_VALUE
          }
          continue
        }

        case BANG: {
          c = s.charCodeAt(i)
          if (c === 0x5b) {
            if (!this._headerDone) {
              this._fail(NOT_WELL_FORMED, 'CDATA section before the stream header')
              return -1
            }
            if (this._depth === 0) {
              this._fail(BAD_FORMAT, 'CDATA section at the stream level')
              return -1
            }
            this._matchPos = 0
            i++
            state = CDATA_OPEN
            continue
          }
          if (c === 0x2d) {
            i++
            state = BANG_DASH
            continue
          }
          if (c === 0x44) {
            this._fail(RESTRICTED_XML, 'DOCTYPE declaration')
            return -1
          }
          this._fail(NOT_WELL_FORMED, "invalid markup after '<!'")
          return -1
        }

        case BANG_DASH: {
          if (s.charCodeAt(i) === 0x2d) this._fail(RESTRICTED_XML, 'comment')
          else this._fail(NOT_WELL_FORMED, "invalid markup after '<!-'")
          return -1
        }

        case CDATA_OPEN: {
          let p = this._matchPos
          for (; i < end && p < 6; i++, p++) {
            if (s.charCodeAt(i) !== 'CDATA['.charCodeAt(p)) {
              this._fail(NOT_WELL_FORMED, "invalid markup after '<!['")
              return -1
            }
          }
          this._matchPos = p
          if (p < 6) break
          tokStart = i
          this._cdataPend = ''
          state = CDATA
          continue
        }

        case CDATA: {
          for (;;) {
            CDATA_RUN.lastIndex = i
            CDATA_RUN.test(s)
            i = CDATA_RUN.lastIndex
            if (i >= end) break
            c = s.charCodeAt(i)
            if (c === 0x3e) {
              if (
                i - tokStart >= 2
                  ? s.charCodeAt(i - 1) === 0x5d && s.charCodeAt(i - 2) === 0x5d
                  : (this._cdataPend + s.slice(tokStart, i)).endsWith(']]')
              ) {
                break
              }
              i++
              continue
            }
            if (c === 0x0d) {
              this._text += this._cdataPend + s.slice(tokStart, i)
              this._cdataPend = ''
              if (s.charCodeAt(i + 1) !== 0x0a) this._text += '\n'
              i++
              tokStart = i
              continue
            }
            if (c >= 0xd800 && c <= 0xdbff) {
              const d = s.charCodeAt(i + 1)
              if (d >= 0xdc00 && d <= 0xdfff) {
                i += 2
                continue
              }
            }
            this._fail(NOT_WELL_FORMED, 'illegal character in CDATA section')
            return -1
          }
          if (i >= end) {
            i = end
            break
          }
          // i is at the '>' of ']]>'.
          const pend = this._cdataPend
          if (i - tokStart >= 2) {
            if (i - 2 > tokStart || pend !== '') this._text += pend + s.slice(tokStart, i - 2)
          } else {
            const t = pend + s.slice(tokStart, i)
            this._text += t.slice(0, t.length - 2)
          }
          this._cdataPend = ''
          i++
          tokStart = i
          state = TEXT
          continue
        }

        case XMLDECL: {
          const next = this._xmlDecl(s, i, end, tokStart)
          if (next === -1) return -1
          if (next === -2) {
            i = end
            break
          }
          i = next
          state = PROLOG
          continue
        }

        case PROLOG: {
          for (; i < end; i++) {
            c = s.charCodeAt(i)
            if (!isSpace(c)) break
            this._declAllowed = false
          }
          if (i >= end) break
          if (c !== 0x3c) {
            this._fail(NOT_WELL_FORMED, 'text before the stream header')
            return -1
          }
          i++
          state = LT
          continue
        }

        case ATTR_EQ: {
          for (; i < end; i++) {
            c = s.charCodeAt(i)
            if (!isSpace(c)) break
          }
          if (i >= end) break
          if (c !== 0x3d) {
            this._fail(NOT_WELL_FORMED, "expected '=' after attribute name")
            return -1
          }
          i++
          state = ATTR_QUOTE
          continue
        }

        case ATTR_QUOTE: {
          for (; i < end; i++) {
            c = s.charCodeAt(i)
            if (!isSpace(c)) break
          }
          if (i >= end) break
          if (c !== 0x22 && c !== 0x27) {
            this._fail(NOT_WELL_FORMED, 'unquoted attribute value')
            return -1
          }
          this._quote = c
          i++
          tokStart = i
          state = ATTR_VALUE
          continue
        }

        case END_NAME: {
          // From END_START: an end tag cut by the chunk's end, or not the expected name.
          if (i === tokStart && this._acc === '' && nameStartWidth(s, i) === 0) {
            this._fail(NOT_WELL_FORMED, 'invalid end tag')
            return -1
          }
          i = scanName(s, i, end)
          if (i >= end) break
          const expected = this._depth > 0 ? this._cur!.name : this._headerName
          let match: boolean
          if (this._acc === '') {
            match = i - tokStart === expected.length && s.startsWith(expected, tokStart)
          } else {
            match = this._acc + s.slice(tokStart, i) === expected
            this._acc = ''
          }
          if (!match) {
            this._fail(NOT_WELL_FORMED, `mismatched end tag: expected </${expected}>`)
            return -1
          }
          c = s.charCodeAt(i)
          i++
          if (c === 0x3e) {
            if (!this._close()) return -1
            if (!this._inLimit) end = s.length
            state = this._depth === 0 ? TEXT0 : TEXT
            tokStart = i
            continue
          }
          if (!isSpace(c)) {
            this._fail(NOT_WELL_FORMED, 'invalid character in end tag')
            return -1
          }
          state = END_GT
          continue
        }

        case END_GT: {
          for (; i < end; i++) {
            c = s.charCodeAt(i)
            if (!isSpace(c)) break
          }
          if (i >= end) break
          if (c !== 0x3e) {
            this._fail(NOT_WELL_FORMED, 'invalid character in end tag')
            return -1
          }
          i++
          if (!this._close()) return -1
          if (!this._inLimit) end = s.length
          state = this._depth === 0 ? TEXT0 : TEXT
          tokStart = i
          continue
        }

        default:
          this._state = state
          this._tok = tokStart
          return i
      }
    }
    this._state = state
    this._tok = tokStart
    return i
  }

  /**
   * Reads whole top-level elements from s[i] (a '<' between top-level elements), as long as
   * each is complete in s and takes only the plainest forms: unprefixed names (`xml:lang`
   * aside), one space before each attribute, `name='value'`, the predefined entities and
   * character references, and no character that needs a check or a normalisation (surrogates,
   * U+E000 and above, control characters, '\r', '>' in text). Each such element is emitted;
   * the first one that is not (or that the size limit cuts) is left to the state machine,
   * from its '<', which then reads it exactly as before: this method changes no parser state
   * until an element is complete, and accepts nothing the state machine would refuse. One cut
   * by the chunk's end is kept (in _carry) to be read again with the next chunk when it is
   * short next to the chunk, else left to the state machine too. Returns where the state
   * machine goes on (the '<' of the element left to it, the first character after the
   * elements that is neither whitespace nor '<', or `end`), or -1 once the parser is dead.
   *
   * Why: the state machine pays for its generality on every character and every token (a
   * dispatch, fields written back, scratch arrays); this loop keeps its state in locals and
   * builds the elements directly, and is small enough for V8 to compile quickly.
   */
  private _plain(s: string, i: number, end: number): number {
    for (;;) {
      // s[i] is the '<' of a top-level element.
      const next = this._plainElement(s, i, end)
      if (next < 0) {
        if (next === PLAIN_DEAD) return -1
        if (next === PLAIN_NO) return i
        // Cut by the end of s: when it is the chunk's end (not the size limit) and the element
        // is short next to the chunk, the element is read again from its '<' with the next
        // chunk, as _chunkEnd does with a cut tag; otherwise the state machine reads it.
        const n = end - i
        if (i + this._maxSize < end || end !== s.length || n > CARRY_MAX || n * 8 > end) return i
        this._carry = s.slice(i)
        return end
      }
      i = next
      let c = 0
      for (; i < end; i++) {
        c = s.charCodeAt(i)
        if (!(c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09)) break
      }
      if (i >= end || c !== 0x3c) return i
    }
  }

  /**
   * One top-level element for _plain, from its '<' at s[i]: emitted, and the index after it
   * returned; or PLAIN_NO (not in the plainest forms: the state machine reads it), PLAIN_CUT
   * (cut by the end of s or of the size limit) or PLAIN_DEAD (a handler stopped the parser).
   * Called once per element, not once per chunk, V8 compiles it once, as a function.
   */
  private _plainElement(s: string, i: number, end: number): number {
    const names = this._attrNames
    const maxDepth = this._maxDepth
    const maxAttrs = this._maxAttrs
    const lim = Math.min(end, i + this._maxSize)
    let depth = 0
    let cur: Element | null = null
    let c = 0
    i++
    for (;;) {
      // s[i - 1] is a '<' inside the element (or its own).
      if (i >= lim) return PLAIN_CUT
      c = s.charCodeAt(i)
      if (c === 0x2f) {
        // An end tag: the name of the open element, then '>'. (At depth 0, the stream's.)
        if (cur === null) return PLAIN_NO
        const name = cur.name
        const n = name.length
        // (Cut by the end of s: carried only when what there is matches.)
        const m = Math.min(n, lim - i - 1)
        let k = 0
        while (k < m && name.charCodeAt(k) === s.charCodeAt(i + 1 + k)) k++
        if (k !== m) return PLAIN_NO
        if (i + n + 1 >= lim) return PLAIN_CUT
        if (s.charCodeAt(i + 1 + n) !== 0x3e) return PLAIN_NO
        i += n + 2
        depth--
        if (depth === 0) break
        cur = cur.parent
      } else {
        if (c >= 0x80 || (ASCII_NAME[c]! & NAME_START) === 0 || depth >= maxDepth) return PLAIN_NO
        NAME_FLAGS[0] = 0
        const name = readName(s, i, lim, NAME_FLAGS, ELEMENT_NAMES)
        if (name === '') return PLAIN_CUT
        if (NAME_FLAGS[0] !== 0 || (depth === 0 && name === 'stream')) return PLAIN_NO
        i += name.length
        const el = new Element(name)
        const attrs = el.attrs
        let n = 0
        c = s.charCodeAt(i)
        while (c === 0x20) {
          i++
          if (i >= lim) return PLAIN_CUT
          c = s.charCodeAt(i)
          if (c >= 0x80 || (ASCII_NAME[c]! & NAME_START) === 0) break
          if (n >= maxAttrs) return PLAIN_NO
          NAME_FLAGS[0] = 0
          const an = readName(s, i, lim, NAME_FLAGS, ATTRIBUTE_NAMES)
          if (an === '') return PLAIN_CUT
          if (NAME_FLAGS[0] !== 0 && an !== 'xml:lang') return PLAIN_NO
          i += an.length
          if (i >= lim) return PLAIN_CUT
          if (s.charCodeAt(i) !== 0x3d) return PLAIN_NO
          if (i + 1 >= lim) return PLAIN_CUT
          const q = s.charCodeAt(i + 1)
          if (q !== 0x27 && q !== 0x22) return PLAIN_NO
          i += 2
          let vFrom = i
          let acc = ''
          for (;;) {
            const long = lim - i > 24
            const stop = long ? i + 24 : lim
            for (; i < stop; i++) {
              c = s.charCodeAt(i)
              if (c > 0x3c ? c >= 0xd800 : c < 0x20 || c === q || c === 0x3c || c === 0x26) break
            }
            if (i === stop && long) {
              const run = q === 0x27 ? APOS_RUN : QUOT_RUN
              run.lastIndex = i
              run.test(s)
              i = run.lastIndex
            }
            if (i >= lim) return PLAIN_CUT
            c = s.charCodeAt(i)
            if (c === q) break
            const e = c === 0x26 ? predefinedEntity(s, i + 1, lim) : 0
            if (e === 0) return PLAIN_NO
            acc += s.slice(vFrom, i) + String.fromCharCode(e & 0xff)
            i += 1 + (e >> 8)
            vFrom = i
          }
          const value = acc === '' ? s.slice(vFrom, i) : acc + s.slice(vFrom, i)
          if (n > 0 && isDuplicate(names, n, an, attrs)) return PLAIN_NO
          if (an === 'xmlns' && isReservedNs(value)) return PLAIN_NO
          names[n++] = an
          attrs[an] = value
          i++
          if (i >= lim) return PLAIN_CUT
          c = s.charCodeAt(i)
        }
        for (let k = 0; k < n; k++) names[k] = ''
        let open = true
        if (c === 0x2f) {
          if (i + 1 >= lim) return PLAIN_CUT
          if (s.charCodeAt(i + 1) !== 0x3e) return PLAIN_NO
          i += 2
          open = false
        } else if (c === 0x3e) {
          i++
        } else {
          return PLAIN_NO
        }
        if (cur !== null) {
          // A first child in an array of its own size: pushed onto ltx's empty array, it
          // would get room for 17 (most elements here have one child or none).
          const children = cur.children
          if (children.length === 0) cur.children = [el]
          else children.push(el)
          el.parent = cur
        }
        if (!open) {
          if (depth === 0) {
            cur = el
            break
          }
        } else {
          cur = el
          depth++
        }
      }
      // Character data of cur, up to the next '<'.
      let from = i
      let text = ''
      for (;;) {
        const long = lim - i > 16
        const stop = long ? i + 16 : lim
        for (; i < stop; i++) {
          c = s.charCodeAt(i)
          if (
            c > 0x3e
              ? c >= 0xd800
              : c < 0x20
                ? c !== 0x0a && c !== 0x09
                : c === 0x3c || c === 0x26 || c === 0x3e
          ) {
            break
          }
        }
        if (i === stop && long) {
          TEXT_RUN.lastIndex = i
          TEXT_RUN.test(s)
          i = TEXT_RUN.lastIndex
        }
        if (i >= lim) return PLAIN_CUT
        c = s.charCodeAt(i)
        if (c === 0x3c) break
        if (c !== 0x26) return PLAIN_NO
        const amp = i
        let ch: string
        const e = predefinedEntity(s, i + 1, lim)
        if (e !== 0) {
          ch = String.fromCharCode(e & 0xff)
          i += 1 + (e >> 8)
        } else {
          // A character reference (XML 1.0 §4.1): '&#' digits ';' or '&#x' hex digits ';'.
          let k = i + 1
          if (k >= lim || s.charCodeAt(k) !== 0x23) return PLAIN_NO
          k++
          const hex = k < lim && s.charCodeAt(k) === 0x78
          if (hex) k++
          let v = 0
          const first = k
          for (; k < lim; k++) {
            const d = s.charCodeAt(k)
            if (d >= 0x30 && d <= 0x39) v = hex ? v * 16 + d - 0x30 : v * 10 + d - 0x30
            else if (hex && d >= 0x61 && d <= 0x66) v = v * 16 + d - 0x57
            else if (hex && d >= 0x41 && d <= 0x46) v = v * 16 + d - 0x37
            else break
            if (v > 0x10ffff) return PLAIN_NO
          }
          if (k === first || k >= lim || s.charCodeAt(k) !== 0x3b || !isXmlChar(v)) return PLAIN_NO
          ch = String.fromCodePoint(v)
          i = k + 1
        }
        text += amp > from ? s.slice(from, amp) + ch : ch
        from = i
      }
      if (i > from) text = text === '' ? s.slice(from, i) : text + s.slice(from, i)
      if (text !== '') {
        const children = cur!.children
        if (children.length === 0) cur!.children = [text]
        else children.push(text)
      }
      i++
    }
    // cur is a complete top-level element, s[i - 1] its last '>'.
    return this._emit(cur!) ? i : PLAIN_DEAD
  }

  /** A start tag is complete (its name in _tagName, attributes in _attrNames/_attrValues). */
  private _open(selfClosing: boolean): boolean {
    const name = this._tagName
    // The attributes go straight into the new Element's attrs object (the header has none).
    const el = this._headerDone ? new Element(name) : null
    const attrs: Record<string, string> = el === null ? {} : el.attrs
    const mark = this._nsLen
    let colon = -1
    let uri: string | undefined
    if (this._special === 0) {
      // Fast path: no prefixes (so no namespace declarations to track) and ordinary names.
      const n = this._nAttrs
      const names = this._attrNames
      const values = this._attrValues
      for (let k = 0; k < n; k++) {
        const an = names[k]!
        if (k > 0 && isDuplicate(names, k, an, attrs)) {
          return this._fail(NOT_WELL_FORMED, `duplicate attribute ${an}`)
        }
        const av = values[k]!
        if (an === 'xmlns' && isReservedNs(av)) {
          return this._fail(NOT_WELL_FORMED, `invalid namespace declaration xmlns='${av}'`)
        }
        attrs[an] = av
      }
    } else {
      if (!this._slowAttrs(attrs)) return false
      // Prefixes must be declared (by this element or an ancestor, the stream header included).
      colon = name.indexOf(':')
      if (colon !== -1) {
        if (!validQName(name, colon))
          return this._fail(NOT_WELL_FORMED, `invalid element name ${name}`)
        uri = this._lookup(name.slice(0, colon))
        if (uri === undefined)
          return this._fail(NOT_WELL_FORMED, `undeclared namespace prefix in <${name}>`)
      }
    }

    // Don't keep the strings of the last tag alive (they may be large).
    const n = this._nAttrs
    if (n !== 0) {
      const names = this._attrNames
      const values = this._attrValues
      for (let k = 0; k < n; k++) {
        names[k] = ''
        values[k] = ''
      }
    }

    if (el === null) return this._openHeader(name, colon, uri, attrs, selfClosing)

    const depth = this._depth
    if (depth === 0 && isLocalStream(name, colon)) {
      if (colon === -1) uri = attrs.xmlns ?? this._defaultNs
      if (uri === STREAMS_NS) return this._fail(BAD_FORMAT, 'stream header inside the stream')
    }

    const parent = this._cur
    if (parent !== null) {
      if (this._text !== '') {
        parent.children.push(this._text)
        this._text = ''
      }
      parent.children.push(el)
      el.parent = parent
    }
    if (selfClosing) {
      if (this._nsLen !== mark) this._undeclare(mark)
      if (depth === 0) {
        this._inLimit = false
        return this._emit(el)
      }
      return true
    }
    this._stack[depth] = el
    this._nsMarks[depth] = mark
    this._depth = depth + 1
    this._cur = el
    return true
  }

  /** Attributes of a tag with prefixed or unusual names: namespace declarations and checks. */
  private _slowAttrs(attrs: Record<string, string>): boolean {
    const n = this._nAttrs
    const names = this._attrNames
    const values = this._attrValues
    let prefixed = 0
    for (let k = 0; k < n; k++) {
      const an = names[k]!
      const av = values[k]!
      if (k > 0 && isDuplicate(names, k, an, attrs)) {
        return this._fail(NOT_WELL_FORMED, `duplicate attribute ${an}`)
      }
      const colon = an.indexOf(':')
      if (colon === 5 && an.startsWith('xmlns')) {
        const prefix = an.slice(6)
        if (prefix.length === 0 || prefix.indexOf(':') !== -1 || nameStartWidth(prefix, 0) === 0) {
          return this._fail(NOT_WELL_FORMED, `invalid namespace declaration ${an}`)
        }
        if (
          av === '' ||
          prefix === 'xmlns' ||
          (prefix === 'xml' ? av !== XML_NS : isReservedNs(av))
        ) {
          return this._fail(NOT_WELL_FORMED, `invalid namespace declaration ${an}`)
        }
        // The header's bindings live as long as the stream: see _openHeader.
        this._declare(prefix, this._headerDone || av.length <= 12 ? av : ` ${av}`.slice(1))
      } else if (colon !== -1) {
        prefixed++
      } else if (an === 'xmlns' && isReservedNs(av)) {
        return this._fail(NOT_WELL_FORMED, `invalid namespace declaration xmlns='${av}'`)
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
    return prefixed === 0 || this._checkPrefixedAttrs(prefixed)
  }

  private _checkPrefixedAttrs(prefixed: number): boolean {
    const names = this._attrNames
    let seen: Set<string> | undefined
    for (let k = 0; k < this._nAttrs; k++) {
      const an = names[k]!
      const colon = an.indexOf(':')
      if (colon === -1 || (colon === 5 && an.startsWith('xmlns'))) continue
      if (!validQName(an, colon)) return this._fail(NOT_WELL_FORMED, `invalid attribute name ${an}`)
      const uri = this._lookup(an.slice(0, colon))
      if (uri === undefined)
        return this._fail(NOT_WELL_FORMED, `undeclared namespace prefix in attribute ${an}`)
      if (prefixed > 1) {
        // Two attributes with the same namespace and local name are duplicates.
        seen ??= new Set()
        const key = `{${uri}}${an.slice(colon + 1)}`
        if (seen.has(key)) return this._fail(NOT_WELL_FORMED, `duplicate attribute ${an}`)
        seen.add(key)
      }
    }
    return true
  }

  private _openHeader(
    name: string,
    colon: number,
    prefixUri: string | undefined,
    attrs: Record<string, string>,
    selfClosing: boolean,
  ): boolean {
    const uri = colon === -1 ? attrs.xmlns : prefixUri
    if (uri !== STREAMS_NS) {
      return this._fail('invalid-namespace', `stream header not in the ${STREAMS_NS} namespace`)
    }
    if (!isLocalStream(name, colon))
      return this._fail(BAD_FORMAT, `<${name}> is not a stream header`)
    if (selfClosing) return this._fail(BAD_FORMAT, 'self-closing stream header')
    // The header's values live as long as the stream; as slices they would keep the whole
    // first chunk alive (idle connections add up). A slice of a concatenation is a slice of
    // a new flat string of the value's size (V8 flattens the concatenation first).
    for (const key in attrs) {
      const value = attrs[key]!
      if (value.length > 12) attrs[key] = ` ${value}`.slice(1)
    }
    this._headerDone = true
    this._headerName = name
    this._defaultNs = attrs.xmlns
    // The header's prefixes (usually `stream` alone) stay bound as long as the stream: a few
    // go to a flat array, and the scope map is dropped until a stanza declares a prefix.
    const declared = this._nsLen
    if (declared > 0 && declared <= 4) {
      const header: string[] = []
      for (let k = 0; k < declared; k++) {
        const prefix = this._nsPrefixes[k]!
        header.push(prefix, this._nsScope!.get(prefix)!)
      }
      this._headerNs = header
      this._nsScope = undefined
      this._nsPrefixes = NO_NS_LOG
      this._nsHidden = NO_NS_LOG
      this._nsLen = 0
    }
    this._inLimit = false
    try {
      this._h.streamStart(attrs)
    } catch (error) {
      this._thrown ??= { error }
    }
    return !this._dead
  }

  /** An end tag matching the current element (or the stream header at depth 0) is complete. */
  private _close(): boolean {
    if (this._depth === 0) {
      this._dead = true
      this._state = DEAD
      this._inLimit = false
      try {
        this._h.streamEnd()
      } catch (error) {
        this._thrown ??= { error }
      }
      return false
    }
    const d = this._depth - 1
    const el = this._cur!
    if (this._text !== '') {
      el.children.push(this._text)
      this._text = ''
    }
    const mark = this._nsMarks[d]!
    if (this._nsLen !== mark) this._undeclare(mark)
    this._depth = d
    if (d === 0) {
      this._cur = null
      // Forget the finished stanza's elements: an idle stream must not keep its last one.
      const stack = this._stack
      stack[0] = null
      for (let k = 1; k < stack.length && stack[k] !== null; k++) stack[k] = null
      this._inLimit = false
      return this._emit(el)
    }
    this._cur = this._stack[d - 1]!
    return true
  }
}
