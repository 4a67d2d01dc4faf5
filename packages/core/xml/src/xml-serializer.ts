import type { Element } from './element.js'
import { XMPPError } from '@core/errors'
import { isXMLName } from './element-reader.js'

/*
 * Serialisation of ltx elements for the wire.
 *
 * Everything that reaches the wire is well-formed XML 1.0: text and attribute values are
 * escaped, characters XML 1.0 does not allow (C0 controls other than tab/LF/CR, lone
 * surrogates, U+FFFE, U+FFFF) make serialisation throw XMPPError('invalid-xml-char'), and
 * element/attribute names that are not XML names throw XMPPError('invalid-xml-name').
 *
 * Fast path: one precompiled character-class test per string. When it finds nothing the
 * string is used as is; only then do we look closer (illegal characters, escaping).
 */

// Anything that needs a closer look in text: markup characters, C0 controls other than tab and
// LF (CR included: see escapeText), any surrogate code unit (legal in pairs, so the slow path
// decides), U+FFFE and U+FFFF.
const TEXT_SUSPECT = /[&<>\u0000-\u0008\u000b-\u001f\ud800-\udfff\ufffe\uffff]/
// The same for attribute values, which also escape quotes and tab/LF/CR.
const ATTR_SUSPECT = /[&<>"'\u0000-\u001f\ud800-\udfff\ufffe\uffff]/

/** Where a string sits, for error messages: 'text', or an attribute, of an element or not. */
function place(attr: boolean, elName: string | undefined, attrName: string | undefined): string {
  const what = attr
    ? attrName === undefined
      ? 'attribute value'
      : `attribute ${attrName}`
    : 'text'
  return elName === undefined ? what : `${what} of <${elName}>`
}

function illegal(s: string, i: number, where: string): never {
  const hex = s.charCodeAt(i).toString(16).toUpperCase().padStart(4, '0')
  throw new XMPPError(
    'invalid-xml-char',
    `character U+${hex} at index ${i} of ${where} is not allowed in XML 1.0`,
  )
}

/**
 * One pass that escapes and checks against XML 1.0's Char production (§2.2): tab, LF, CR,
 * U+0020-U+D7FF, U+E000-U+FFFD, and supplementary characters as well-formed surrogate pairs.
 * Only called when the *_SUSPECT test matched.
 */
function escapeSlow(s: string, attr: boolean, elName?: string, attrName?: string): string {
  let out = ''
  let last = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c > 0x3e && c < 0xd800) continue // the bulk of text: nothing to do
    let rep: string
    if (c < 0x20) {
      if (c === 0x0d) rep = '&#13;'
      else if (c === 0x09 || c === 0x0a) {
        if (!attr) continue
        rep = c === 0x09 ? '&#9;' : '&#10;'
      } else illegal(s, i, place(attr, elName, attrName))
    } else if (c === 0x26) rep = '&amp;'
    else if (c === 0x3c) rep = '&lt;'
    else if (c === 0x3e) rep = '&gt;'
    else if (c === 0x22 || c === 0x27) {
      if (!attr) continue
      rep = c === 0x22 ? '&quot;' : '&apos;'
    } else if (c < 0xd800) continue
    else if (c <= 0xdbff) {
      const next = s.charCodeAt(i + 1) // NaN past the end
      if (!(next >= 0xdc00 && next <= 0xdfff)) illegal(s, i, place(attr, elName, attrName))
      i++
      continue
    } else if (c <= 0xdfff || c >= 0xfffe) illegal(s, i, place(attr, elName, attrName))
    else continue
    out += s.slice(last, i) + rep
    last = i + 1
  }
  return last === 0 ? s : out + s.slice(last)
}

/**
 * Escapes character data: & < > (escaping '>' always also rules out ']]>'), and CR as &#13;
 * because a parser turns a literal CR (or CR LF) into LF (XML 1.0 §2.11), which would change
 * the text. Returns the same string when nothing needs escaping. Throws
 * XMPPError('invalid-xml-char') for characters XML 1.0 does not allow.
 */
export function escapeText(s: string): string {
  return TEXT_SUSPECT.test(s) ? escapeSlow(s, false) : s
}

/**
 * Escapes an attribute value for either quote style: & < > " ' plus tab, LF and CR as character
 * references, which survive attribute-value normalisation (XML 1.0 §3.3.3). Returns the same
 * string when nothing needs escaping. Throws XMPPError('invalid-xml-char').
 */
export function escapeAttr(s: string): string {
  return ATTR_SUSPECT.test(s) ? escapeSlow(s, true) : s
}

// XML 1.0 (5th edition) §2.3 Name. The ASCII test settles virtually every real name.
const ASCII_NAME = /^[A-Za-z_:][-.\w:]*$/

// Names that passed the check. Real traffic uses a few dozen distinct names, so a Set lookup
// beats running the regex every time; the cap keeps hostile input from growing it forever.
const KNOWN_NAMES = new Set<string>()
const MAX_KNOWN_NAMES = 2048

function checkName(name: unknown, what: string): string {
  if (typeof name === 'string' && (ASCII_NAME.test(name) || isXMLName(name))) {
    if (KNOWN_NAMES.size >= MAX_KNOWN_NAMES) KNOWN_NAMES.clear()
    KNOWN_NAMES.add(name)
    return name
  }
  throw new XMPPError(
    'invalid-xml-name',
    `${what} ${JSON.stringify(String(name))} is not an XML name`,
  )
}

function write(el: Element): string {
  const tag: unknown = el.name
  const name = KNOWN_NAMES.has(tag as string) ? (tag as string) : checkName(tag, 'element name')
  let out = `<${name}`
  const attrs = el.attrs
  for (const k in attrs) {
    const v: unknown = attrs[k]
    if (v === null || v === undefined) continue
    const s = typeof v === 'string' ? v : String(v)
    out += ` ${KNOWN_NAMES.has(k) ? k : checkName(k, `attribute name on <${name}>`)}="${
      ATTR_SUSPECT.test(s) ? escapeSlow(s, true, name, k) : s
    }"`
  }
  const children = el.children
  const n = children.length
  if (n === 0) return `${out}/>`
  out += '>'
  for (let i = 0; i < n; i++) {
    const c: unknown = children[i]
    if (typeof c === 'string') {
      out += TEXT_SUSPECT.test(c) ? escapeSlow(c, false, name) : c
    } else if (typeof c === 'object') {
      if (c !== null) out += write(c as Element)
    } else if (c !== undefined) {
      // Numbers (and other primitives) as text; ltx writes them the same way.
      const s = String(c)
      out += TEXT_SUSPECT.test(s) ? escapeSlow(s, false, name) : s
    }
  }
  return `${out}</${name}>`
}

/**
 * Serialises an element and its descendants. An element without children is written
 * self-closing (`<x/>`); null and undefined attribute values are omitted, as are null and
 * undefined children; numbers are written in base 10. Throws XMPPError with code
 * 'invalid-xml-char' or 'invalid-xml-name' rather than emit something that is not XML.
 */
export function serialize(el: Element): string {
  return write(el)
}

/**
 * The opening of an XMPP stream (RFC 6120 §4.2): the XML declaration and the `<stream:stream>`
 * open tag, not closed. Attributes set to undefined are left out; give `xmlns` and
 * `xmlns:stream` yourself. Values are escaped.
 */
export function streamHeader(attrs: Record<string, string | undefined>): string {
  let out = "<?xml version='1.0'?><stream:stream"
  for (const k in attrs) {
    const v = attrs[k]
    if (v === undefined) continue
    out += ` ${checkName(k, 'attribute name')}='${escapeAttr(v)}'`
  }
  return `${out}>`
}

/** Closes what streamHeader() opened (RFC 6120 §4.4). */
export const STREAM_FOOTER = '</stream:stream>'
