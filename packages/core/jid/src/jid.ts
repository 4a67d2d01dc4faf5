import { JIDError } from '@core/errors'

/*
 * XMPP addresses (JIDs) as defined by RFC 7622.
 *
 *   jid = [ localpart "@" ] domainpart [ "/" resourcepart ]
 *
 * What is implemented, and what is knowingly simplified:
 *
 * - Localpart: the PRECIS UsernameCaseMapped profile (RFC 8265 §3.3) reduced to its
 *   observable essentials: fullwidth/halfwidth forms are width-mapped, the string is
 *   lowercased (Unicode toLowerCase) and put in NFC, then the eight characters RFC 7622
 *   §3.3.1 forbids, all whitespace and all control characters are rejected. The finer
 *   PRECIS IdentifierClass rules (unassigned code points, symbols, the bidi rule, the
 *   contextual rules for joiners) are not enforced.
 * - Domainpart: IDNA2008 (RFC 5890-5892) is out of scope. ASCII names are checked against
 *   the DNS hostname syntax (letters, digits, hyphen, plus underscore, which appears in real
 *   DNS names) and lowercased; non-ASCII names are width-mapped, have the ideographic full
 *   stops turned into '.', are lowercased and put in NFC, and only reject characters that
 *   could never appear in a hostname. No Punycode conversion, so the 63-octet label limit is
 *   only checked for ASCII labels. IP literals: IPv4 (it is valid hostname syntax anyway) and
 *   IPv6 inside square brackets.
 * - Resourcepart: the PRECIS OpaqueString profile (RFC 8265 §4.2) reduced to: non-ASCII
 *   spaces become U+0020, NFC, and control characters are rejected. Case is preserved.
 *
 * Plain ASCII input (the overwhelmingly common case) never touches String#normalize.
 */

/** RFC 7622 §3.2-§3.4: every part present in a JID is 1 to 1023 octets of UTF-8. */
const MAX_PART_BYTES = 1023
/** RFC 1035 §2.3.4 (via RFC 5890): a DNS label is at most 63 octets. */
const MAX_LABEL = 63

// What each part refuses. The Unicode classes cover the ASCII ones: C0 controls and DEL are
// \p{Cc}, space, tab, CR and LF are \p{White_Space}; \p{Cs} is a lone surrogate.
// RFC 7622 §3.3.1: a localpart also refuses these eight characters.
const LOCAL_BAD = /[\p{Cc}\p{Cs}\p{White_Space}"&'/:<>@]/u
// A domainpart: also ASCII that a hostname label does not allow (letters, digits, hyphen, and
// underscore, which real DNS names use; '.' separates labels).
const DOMAIN_BAD = /[\p{Cc}\p{Cs}\p{White_Space}]|[^\w.\x80-\u{10ffff}-]/u
const RESOURCE_BAD = /[\p{Cc}\p{Cs}]/u
const NON_ASCII = /[^\x00-\x7f]/
const WIDTH_FORMS = /[\uff01-\uffef]/g // fullwidth and halfwidth forms (RFC 8265 width mapping)
const IDEOGRAPHIC_STOP = /\u3002/g // after width mapping, the remaining IDNA label separator
const NON_ASCII_SPACE = /\p{Zs}/gu // OpaqueString maps these to U+0020

// tryParse()/isValidJID() run the same code in "quiet" mode: failures throw this shared
// sentinel instead of building a JIDError (and its stack trace).
const QUIET_FAILURE: unique symbol = Symbol('invalid JID')
let quiet = false
// Set by trusted() so that the constructor skips validation of already-normalised parts.
let trusting = false

function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s)
}

function fail(src: string | undefined, message: string): never {
  if (quiet) throw QUIET_FAILURE
  throw new JIDError(
    src === undefined ? `invalid JID: ${message}` : `invalid JID ${quote(src)}: ${message}`,
  )
}

const UTF8 = new TextEncoder()

function widthMap(s: string): string {
  return s.replace(WIDTH_FORMS, (c) => c.normalize('NFKC'))
}

/**
 * Checks the normalised `out` of one part (whose text was `value`): no character `bad`
 * matches (named with its position when `out` is `value`, i.e. ASCII), at most 1023 bytes of
 * UTF-8 (`ascii`: one byte per character).
 */
function check(
  src: string | undefined,
  part: string,
  value: string,
  out: string,
  bad: RegExp,
  ascii: boolean,
): string {
  const m = bad.exec(out)
  if (m) {
    const cp = m[0].codePointAt(0) as number
    const hex = cp.toString(16).toUpperCase().padStart(4, '0')
    // The character itself only when it is printable.
    const shown = cp > 0x20 && !(cp >= 0x7f && cp <= 0xa0) && !(cp >= 0xd800 && cp <= 0xdfff)
    fail(
      src,
      `${part} ${quote(value)} contains forbidden character U+${hex}${shown ? ` (${m[0]})` : ''}${ascii ? ` at index ${m.index}` : ''}`,
    )
  }
  const bytes = ascii ? out.length : UTF8.encode(out).length
  if (bytes > MAX_PART_BYTES)
    fail(src, `${part} is ${bytes} bytes long (at most ${MAX_PART_BYTES})`)
  return out
}

/**
 * Localpart (RFC 7622 §3.3), UsernameCaseMapped order (RFC 8265 §3.3.2): width mapping,
 * case mapping, then NFC. ASCII needs the case mapping only.
 */
function normLocal(l: string, src: string | undefined): string {
  if (!NON_ASCII.test(l)) return check(src, 'localpart', l, l.toLowerCase(), LOCAL_BAD, true)
  const out = widthMap(l).toLowerCase().normalize('NFC')
  return check(src, 'localpart', l, out, LOCAL_BAD, false)
}

/**
 * Domainpart (RFC 7622 §3.2). Non-ASCII, a rough stand-in for the IDNA2008 mappings of
 * RFC 5895: width mapping, the ideographic full stop as a label separator, lowercase, NFC.
 * One trailing dot is removed (a final label separator); then each label is non-empty, at
 * most 63 characters when ASCII, only LDH characters (plus underscore) among its ASCII
 * characters, no hyphen at either end.
 */
function normDomain(d: string, src: string | undefined): string {
  if (d === '') fail(src, 'the domainpart is empty')
  if (d.charCodeAt(0) === 0x5b /* [ */) return normIPLiteral(d, src)
  const ascii = !NON_ASCII.test(d)
  let out = ascii
    ? d.toLowerCase()
    : widthMap(d).replace(IDEOGRAPHIC_STOP, '.').toLowerCase().normalize('NFC')
  if (out.endsWith('.')) out = out.slice(0, -1)
  const bad = (what: string) => fail(src, `domainpart ${quote(d)} ${what}`)
  if (out === '') bad('is empty')
  for (const label of out.split('.')) {
    if (label === '') bad('has an empty label')
    if (label.length > MAX_LABEL && !NON_ASCII.test(label)) {
      bad(`has a label of ${label.length} characters (at most ${MAX_LABEL})`)
    }
    if (label.startsWith('-') || label.endsWith('-'))
      bad('has a label that starts or ends with "-"')
  }
  return check(src, 'domainpart', d, out, DOMAIN_BAD, ascii)
}

/**
 * RFC 7622 §3.2 allows an IP literal; IPv6 is written in brackets as in URIs (RFC 3986). The
 * address is checked by the platform's URL parser (the RFC 4291 §2.2 text forms, no zone
 * identifier), after a character check: that parser would drop tabs and newlines.
 */
function normIPLiteral(d: string, src: string | undefined): string {
  if (/^\[[\da-f:.]+\]$/i.test(d)) {
    try {
      new URL(`http://${d}/`)
      return d.toLowerCase()
    } catch {
      // Not an IPv6 address: refused below.
    }
  }
  fail(src, `domainpart ${quote(d)} is not a valid bracketed IPv6 address`)
}

/**
 * Resourcepart (RFC 7622 §3.4), OpaqueString (RFC 8265 §4.2.2): non-ASCII spaces to
 * U+0020, no case mapping, NFC.
 */
function normResource(r: string, src: string | undefined): string {
  const ascii = !NON_ASCII.test(r)
  const out = ascii ? r : r.replace(NON_ASCII_SPACE, ' ').normalize('NFC')
  return check(src, 'resourcepart', r, out, RESOURCE_BAD, ascii)
}

/** A JID of parts already normalised. */
function trusted(local: string, domain: string, resource: string): JID {
  trusting = true
  return new JID(local, domain, resource)
}

// ---------------------------------------------------------------------------------------------

// JIDs parsed from a string, by that string: a stream repeats a few addresses (each stanza's
// `from`), and a JID is immutable, so one parse serves them all. Bounded: emptied when full.
// A key is copied first, so that it never keeps alive the larger string it was sliced from
// (a stanza's attribute is a slice of the whole decoded chunk).
const PARSED = new Map<string, JID>()
const PARSED_MAX = 256
const PARSED_KEY_MAX = 256

/** An immutable, normalised XMPP address. Two JIDs are the same address iff their parts are equal. */
export class JID {
  /** Normalised localpart, '' when absent. */
  readonly local: string
  /** Normalised domainpart. */
  readonly domain: string
  /** Resourcepart, '' when absent. Case-sensitive. */
  readonly resource: string
  #string: string | undefined
  #bare: JID | undefined

  /**
   * Builds a JID from its parts, normalising and validating each one; '' means the part is
   * absent. Throws JIDError.
   */
  constructor(local: string, domain: string, resource = '') {
    if (trusting) {
      trusting = false
      this.local = local
      this.domain = domain
      this.resource = resource
      return
    }
    if (typeof local !== 'string' || typeof domain !== 'string' || typeof resource !== 'string') {
      fail(undefined, 'the parts of a JID must be strings')
    }
    this.local = local === '' ? '' : normLocal(local, undefined)
    this.domain = normDomain(domain, undefined)
    this.resource = resource === '' ? '' : normResource(resource, undefined)
  }

  /**
   * Parses a JID (RFC 7622 §3.1): the resourcepart is everything after the first '/', so it may
   * itself contain '/' and '@'; the localpart is what comes before the last '@' ahead of that.
   * Throws JIDError.
   */
  static parse(s: string): JID {
    const known = PARSED.get(s)
    if (known !== undefined) return known
    if (typeof s !== 'string') fail(undefined, `expected a string, got ${typeof s}`)
    if (s.length > PARSED_KEY_MAX) return JID.#parse(s)
    const key = ` ${s}`.slice(1)
    // Shared by every caller that parses the same text: frozen, so that no caller (plain
    // JavaScript ignores `readonly`) can change the address another one holds.
    const jid = JID.#parse(key)
    Object.freeze(jid)
    if (PARSED.size >= PARSED_MAX) PARSED.clear()
    PARSED.set(key, jid)
    return jid
  }

  static #parse(s: string): JID {
    const slash = s.indexOf('/')
    let bareEnd = s.length
    let resource = ''
    if (slash !== -1) {
      if (slash === s.length - 1) fail(s, 'the resourcepart after "/" is empty')
      resource = normResource(s.slice(slash + 1), s)
      bareEnd = slash
    }
    const at = bareEnd === 0 ? -1 : s.lastIndexOf('@', bareEnd - 1)
    let local = ''
    let domainStart = 0
    if (at !== -1) {
      if (at === 0) fail(s, 'the localpart before "@" is empty')
      local = normLocal(s.slice(0, at), s)
      domainStart = at + 1
    }
    if (domainStart === bareEnd) fail(s, 'the domainpart is missing')
    const domain = normDomain(s.slice(domainStart, bareEnd), s)
    return trusted(local, domain, resource)
  }

  /** Like parse(), but returns undefined for an invalid JID instead of throwing. */
  static tryParse(s: string): JID | undefined {
    quiet = true
    try {
      return JID.parse(s)
    } catch (e) {
      if (e === QUIET_FAILURE) return undefined
      throw e
    } finally {
      quiet = false
    }
  }

  /** The JID without its resource (this same object when it is already bare). */
  bare(): JID {
    if (this.resource === '') return this
    this.#bare ??= trusted(this.local, this.domain, '')
    return this.#bare
  }

  isBare(): boolean {
    return this.resource === ''
  }

  toString(): string {
    if (this.#string === undefined) {
      let s = this.local === '' ? this.domain : `${this.local}@${this.domain}`
      if (this.resource !== '') s += `/${this.resource}`
      this.#string = s
    }
    return this.#string
  }

  /** Same address? A string is parsed first; an invalid string is never equal. */
  equals(other: JID | string): boolean {
    if (other instanceof JID) {
      return (
        this === other ||
        (this.domain === other.domain &&
          this.local === other.local &&
          this.resource === other.resource)
      )
    }
    if (typeof other !== 'string') return false
    if (other === this.toString()) return true
    const j = JID.tryParse(other)
    return j !== undefined && this.equals(j)
  }

  /** The same bare JID with another resource; '' gives the bare JID. Throws JIDError. */
  withResource(r: string): JID {
    if (typeof r !== 'string') fail(undefined, 'the resourcepart must be a string')
    if (r === '') return this.bare()
    return trusted(this.local, this.domain, normResource(r, undefined))
  }
}

/** Alias of JID.parse(). */
export function jid(s: string): JID {
  return JID.parse(s)
}

export function isValidJID(s: string): boolean {
  return JID.tryParse(s) !== undefined
}

// ---------------------------------------------------------------------------------------------
// Cheap comparisons on raw strings

function bareEnd(s: string): number {
  const slash = s.indexOf('/')
  return slash === -1 ? s.length : slash
}

/**
 * The normalised bare JID of a raw JID string, e.g. 'User@Example.COM./res' -> 'user@example.com'.
 * For ASCII input this only slices and lowercases; non-ASCII input is fully parsed. It does not
 * validate and never throws: for an invalid JID the result is just the (ASCII-lowercased) text
 * before the first '/'.
 */
export function bareString(s: string): string {
  const end = bareEnd(s)
  let upper = false
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x80) {
      const j = JID.tryParse(s)
      return j === undefined ? s.slice(0, end) : j.bare().toString()
    }
    if (c >= 0x41 && c <= 0x5a) upper = true
  }
  const stop = end > 0 && s.charCodeAt(end - 1) === 0x2e ? end - 1 : end
  const b = stop === s.length ? s : s.slice(0, stop)
  return upper ? b.toLowerCase() : b
}

/**
 * Do two raw JID strings have the same bare JID? Resources are ignored. For ASCII this is an
 * allocation-free, case-insensitive comparison of the text before the first '/' (ignoring a
 * trailing dot on the domain), which is exactly what normalisation does to ASCII JIDs. When
 * non-ASCII characters are involved both strings are parsed. The comparison does not validate
 * and never throws; when a non-ASCII string is not a valid JID, the bare texts must be identical.
 */
export function sameBareJID(a: string, b: string): boolean {
  let ea = bareEnd(a)
  let eb = bareEnd(b)
  if (ea > 0 && a.charCodeAt(ea - 1) === 0x2e) ea--
  if (eb > 0 && b.charCodeAt(eb - 1) === 0x2e) eb--
  if (ea !== eb) {
    // Different lengths can only match if normalisation changes a length, i.e. non-ASCII.
    return hasNonASCII(a, ea) || hasNonASCII(b, eb) ? sameBareSlow(a, b) : false
  }
  for (let i = 0; i < ea; i++) {
    let ca = a.charCodeAt(i)
    let cb = b.charCodeAt(i)
    if (ca === cb) {
      if (ca >= 0x80) return sameBareSlow(a, b)
      continue
    }
    if (ca >= 0x80 || cb >= 0x80) return sameBareSlow(a, b)
    if (ca >= 0x41 && ca <= 0x5a) ca += 0x20
    if (cb >= 0x41 && cb <= 0x5a) cb += 0x20
    // Two different ASCII characters preceded only by matching ASCII: normalisation (lowercase,
    // NFC composition of a base with following marks) can never make these equal.
    if (ca !== cb) return false
  }
  return true
}

function hasNonASCII(s: string, end: number): boolean {
  for (let i = 0; i < end; i++) if (s.charCodeAt(i) >= 0x80) return true
  return false
}

function sameBareSlow(a: string, b: string): boolean {
  const ja = JID.tryParse(a)
  const jb = JID.tryParse(b)
  if (ja === undefined || jb === undefined) return a.slice(0, bareEnd(a)) === b.slice(0, bareEnd(b))
  return ja.local === jb.local && ja.domain === jb.domain
}

// ---------------------------------------------------------------------------------------------
// XEP-0106 JID Escaping (for localparts only)

const ESCAPES: Record<string, string> = {
  ' ': '\\20',
  '"': '\\22',
  '&': '\\26',
  "'": '\\27',
  '/': '\\2f',
  ':': '\\3a',
  '<': '\\3c',
  '>': '\\3e',
  '@': '\\40',
  '\\': '\\5c',
}
// A backslash is only escaped when what follows it would otherwise read as an escape sequence.
const ESCAPE_RE = /[ "&'/:<>@]|\\(?=20|22|26|27|2f|3a|3c|3e|40|5c)/g
const UNESCAPE_RE = /\\(20|22|26|27|2f|3a|3c|3e|40|5c)/g

/**
 * XEP-0106: turns a username that contains characters a localpart forbids (space " & ' / : < > @)
 * into one that does not, e.g. 'd\'artagnan' -> 'd\\27artagnan'. A leading or trailing space is
 * not allowed by XEP-0106 and throws JIDError. Other invalid characters are left for parse().
 */
export function escapeLocal(s: string): string {
  if (s.startsWith(' ') || s.endsWith(' ')) {
    throw new JIDError(`cannot escape ${quote(s)}: a localpart must not begin or end with a space`)
  }
  return s.replace(ESCAPE_RE, (c) => ESCAPES[c]!)
}

/** XEP-0106: the inverse of escapeLocal(), a single left-to-right pass over the ten sequences. */
export function unescapeLocal(s: string): string {
  if (s.indexOf('\\') === -1) return s
  return s.replace(UNESCAPE_RE, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
}
