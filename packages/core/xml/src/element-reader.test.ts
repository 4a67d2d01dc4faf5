import { describe, expect, test } from 'vitest'
import { ElementReader } from './element-reader.js'

const reader = (options = {}) => new ElementReader('jabber:client', options)
const condition = (text: string, options = {}) => reader(options).read(text).error?.condition

describe('ElementReader', () => {
  test('reads a message with its attributes, text, references, CDATA and children', () => {
    const read = reader().read(
      `<message to='a@b' type="chat"><body>x &amp; &#x1F600; <![CDATA[<y>]]>\r\nz</body><c xmlns='urn:c'/></message>`,
    )
    expect(read.error).toBeUndefined()
    expect(read.complete).toBe(true)
    const [message] = read.elements
    expect(message?.attrs).toEqual({ to: 'a@b', type: 'chat' })
    expect(message?.getChildText('body')).toBe('x & 😀 <y>\nz')
    expect(message?.getChild('c', 'urn:c')?.parent).toBe(message)
    expect(message?.parent).toBe(null)
  })

  test('the stream prefix is bound; other prefixes must be declared', () => {
    expect(reader().read(`<stream:features/>`).elements[0]?.name).toBe('stream:features')
    expect(condition(`<x:y/>`)).toBe('not-well-formed')
    expect(condition(`<x:y xmlns:x='urn:x'/>`)).toBeUndefined()
    expect(condition(`<stream:stream/>`)).toBe('bad-format')
  })

  test('what the restricted profile refuses (RFC 6120 §11)', () => {
    expect(condition(`<a><!--c--></a>`)).toBe('restricted-xml')
    expect(condition(`<a><?pi?></a>`)).toBe('restricted-xml')
    expect(condition(`<!DOCTYPE a>`)).toBe('restricted-xml')
    expect(condition(`<a>&nbsp;</a>`)).toBe('restricted-xml')
    expect(condition(`<a>&#0;</a>`)).toBe('not-well-formed')
    expect(condition(`<a/>text`)).toBe('bad-format')
  })

  test('limits: size from the element’s < to its >, depth, attributes', () => {
    const body = `<a>${'x'.repeat(10)}</a>` // 17 characters
    expect(condition(body, { maxStanzaSize: 17 })).toBeUndefined()
    expect(condition(body, { maxStanzaSize: 16 })).toBe('policy-violation')
    // Each element has its own allowance.
    expect(reader({ maxStanzaSize: 17 }).read(`${body} ${body}`).elements).toHaveLength(2)
    expect(condition('<a><b><c/></b></a>', { maxDepth: 2 })).toBe('policy-violation')
    expect(condition('<a><b/></a>', { maxDepth: 2 })).toBeUndefined()
    expect(condition(`<a x='1' y='2'/>`, { maxAttributes: 1 })).toBe('policy-violation')
    expect(() => reader({ maxDepth: 0 })).toThrow(RangeError)
  })

  test('character references (XML 1.0 §4.1): decimal, lowercase-x hex, in range, ended by ;', () => {
    const text = (ref: string) => reader().read(`<a>${ref}</a>`).elements[0]?.getText()
    expect(text('&#65;&#x41;&#x0041;&#0000065;&#x10FFFF;')).toBe('AAAA\u{10ffff}')
    for (const bad of [
      '&#X41;',
      '&#x;',
      '&#;',
      '&#a;',
      '&#1a;',
      '&#xG;',
      '&#65',
      '&#1114112;',
      '&#x110000;',
      '&#99999999999999999999;',
      '&#xFFFE;',
      '&#xD800;',
    ]) {
      expect(condition(`<a>${bad}</a>`), bad).toBe('not-well-formed')
    }
    // The text ends inside the reference: unfinished, not an error.
    for (const cut of ['<a>&', '<a>&#', '<a>&#x', '<a>&#12', '<a>&#x1F']) {
      expect(reader().read(cut), cut).toEqual({ elements: [], error: undefined, complete: false })
    }
    // Out of range is known before the text ends.
    expect(condition('<a>&#1114112')).toBe('not-well-formed')
  })

  test('an unfinished element is no error, and not complete', () => {
    const read = reader().read(`<a><b>`)
    expect(read).toEqual({ elements: [], error: undefined, complete: false })
  })

  test('an attribute named __proto__ is an attribute, not a prototype', () => {
    const [el] = reader().read(`<a __proto__='x'/>`).elements
    expect(Object.getPrototypeOf(el?.attrs)).toBe(Object.prototype)
    expect(Object.entries(el?.attrs ?? {})).toEqual([['__proto__', 'x']])
  })
})
