/**
 * Differential property test of ElementReader (whole elements, as in an RFC 7395 message)
 * against StreamParser fed the same text on an implied stream, as the WebSocket framing's
 * reader was before ElementReader existed.
 *
 * It generates messages (XMPP-like elements: namespace declarations and prefixes, entities
 * and character references at the edges of the legal ranges, CDATA, CR and CRLF, non-ASCII
 * names, surrogate pairs), mutates most of them (inserted markup the restricted profile
 * refuses, lone surrogates, NUL, deleted, duplicated and cut text, a second element, text
 * after the element), reads each with and without small limits, and checks that both give:
 * the same elements (names, attributes, text, nesting), the same stream error condition or
 * none, and, without error, the same answer to "did the text end between elements".
 *
 * `pnpm test` runs a fixed-seed slice; `ELEMENT_FUZZ_SEED=<n> ELEMENT_FUZZ_COUNT=<n>` runs others.
 */
import type { Element } from 'ltx'
import { describe, expect, test } from 'vitest'
import { ElementReader } from './element-reader.js'
import { StreamParser, type StreamParserOptions } from './stream-parser.js'
import { Rng } from '../test/rng.js'

const STREAMS_NS = 'http://etherx.jabber.org/streams'
const XMLNS = 'jabber:client'

const WS = [' ', '\n', '\t', '\r\n', '\r']
const NAMES = [
  'message',
  'body',
  'iq',
  'query',
  'x',
  'item',
  'a',
  'é',
  '_u',
  'x-y.z_1',
  '日本',
  'n\u00b7\u0300',
  '\u{10000}x',
  'stream',
  'open',
  'close',
]
const ATTRS = ['id', 'to', 'type', 'xml:lang', 'a', 'é', 'b-c', '__proto__', 'constructor']
const PREFIXES = ['stream', 'a', 'b', 'xml', 'é', 'q']
const URIS = ['urn:a', 'urn:b', STREAMS_NS, 'jabber:client', 'urn:é', '']
const PIECES = [
  'hello',
  'x y',
  '&amp;',
  '&lt;',
  '&gt;',
  '&quot;',
  '&apos;',
  '&#65;',
  '&#x1F600;',
  '&#x10FFFF;',
  '&#xD800;',
  '&#0;',
  '&#9;',
  '&#x110000;',
  '&#99999999999;',
  '&#;',
  '&#x;',
  '&foo;',
  '&ampx;',
  '&nbsp;',
  '&amp',
  '& ',
  '&#12a;',
  '\r\n',
  '\r',
  '\n',
  '\t',
  'é',
  '😀',
  '\ufffd',
  '\ue000',
  ']',
  ']]',
  ']]>',
  '>',
  '"',
  "'",
  '<![CDATA[a<b>&c]]>',
  '<![CDATA[]]>',
  '<![CDATA[x]]]>',
  '<![CDATA[\r\n\r]]>',
  '<![CDATA[😀]]>',
]
const TOKENS = [
  '<',
  '>',
  '/>',
  '</',
  '&',
  ';',
  '=',
  "'",
  '"',
  ':',
  ' ',
  '<!--x-->',
  '<!-',
  '<!D',
  '<!DOCTYPE x>',
  '<!x',
  '<![CDATA[',
  '<![CDAT',
  ']]>',
  '<?x?>',
  '<?xml version="1.0"?>',
  '</stream:stream>',
  '<stream:stream>',
  `<stream xmlns='${STREAMS_NS}'>`,
  '<stream:features/>',
  'xmlns:',
  'xmlns=',
  "xmlns='http://www.w3.org/XML/1998/namespace'",
  "xmlns:p='http://www.w3.org/2000/xmlns/'",
  "xmlns:xml='urn:x'",
  "xmlns:xmlns='urn:x'",
  "u:a='1'",
  '\u0000',
  '\u0001',
  '\u000b',
  '\ud800',
  '\udc00',
  '\ud83d',
  '\uffff',
  '\ufffe',
  '<a/>',
  '<b>t</b>',
  'junk',
  '\u{e0000}',
  '\udb80\udc00',
]

function text(rng: Rng, quote: string): string {
  let s = ''
  for (let k = rng.int(4); k > 0; k--) {
    let piece = rng.pick(PIECES)
    if (quote !== '' && piece.startsWith('<![')) piece = 'cd'
    if (piece === quote) piece = '&apos;'
    s += piece
  }
  return s
}

function element(rng: Rng, depth: number, maxDepth: number): string {
  const name = rng.chance(0.2) ? `${rng.pick(PREFIXES)}:${rng.pick(NAMES)}` : rng.pick(NAMES)
  let attrs = ''
  for (let k = rng.int(4); k > 0; k--) {
    const sp = rng.chance(0.9) ? ' ' : rng.pick(WS)
    const q = rng.pick(["'", '"'])
    switch (rng.int(6)) {
      case 0:
        attrs += `${sp}xmlns:${rng.pick(PREFIXES)}=${q}${rng.pick(URIS)}${q}`
        break
      case 1:
        attrs += `${sp}xmlns=${q}${rng.pick(URIS)}${q}`
        break
      case 2:
        attrs += `${sp}${rng.pick(PREFIXES)}:${rng.pick(ATTRS)}=${q}${text(rng, q)}${q}`
        break
      default: {
        const eq = rng.chance(0.9) ? '=' : `${rng.pick(WS)}=${rng.pick(WS)}`
        attrs += `${sp}${rng.pick(ATTRS)}${eq}${q}${text(rng, q)}${q}`
      }
    }
  }
  if (rng.chance(0.1)) attrs += rng.pick(WS)
  if (depth >= maxDepth || rng.chance(0.3)) return `<${name}${attrs}/>`
  let content = ''
  for (let k = rng.int(4); k > 0; k--) {
    content += rng.chance(0.5) ? text(rng, '') : element(rng, depth + 1, maxDepth)
  }
  return `<${name}${attrs}>${content}</${name}${rng.chance(0.05) ? rng.pick(WS) : ''}>`
}

function message(rng: Rng): string {
  let s = element(rng, 1, rng.chance(0.2) ? 8 : 4)
  if (rng.chance(0.05)) s = rng.pick(WS) + s
  if (rng.chance(0.1)) s += rng.pick(WS)
  if (rng.chance(0.05)) s += element(rng, 1, 2)
  if (rng.chance(0.7)) {
    for (let k = rng.int(3) + 1; k > 0; k--) {
      const at = rng.int(s.length + 1)
      switch (rng.int(5)) {
        case 0:
        case 1:
          s = s.slice(0, at) + rng.pick(TOKENS) + s.slice(at)
          break
        case 2:
          s = s.slice(0, at) + s.slice(at + 1 + rng.int(6))
          break
        case 3:
          s = s.slice(0, at) + s.slice(at, at + 1 + rng.int(12)) + s.slice(at)
          break
        default:
          s = s.slice(0, at)
      }
    }
  }
  return s
}

type Canon = [string, [string, string][], (string | Canon)[]]

function canon(el: Element): Canon {
  const children = el.children.map((c) => {
    if (typeof c === 'string') return c
    expect(c.parent).toBe(el)
    return canon(c)
  })
  return [el.name, Object.entries(el.attrs as Record<string, string>), children]
}

interface Outcome {
  elements: Canon[]
  condition: string | undefined
  complete: boolean | undefined
}

/** What StreamParser makes of the text as the children of an implied stream. */
function reference(data: string, options: StreamParserOptions): Outcome {
  const elements: Canon[] = []
  let condition: string | undefined
  const parser = new StreamParser(
    {
      streamStart: () => undefined,
      element: (el) => {
        expect(el.parent).toBe(null)
        elements.push(canon(el))
      },
      // The end of the implied stream: ElementReader refuses it as not-well-formed.
      streamEnd: () => {
        condition ??= 'not-well-formed'
      },
      error: (error) => {
        condition ??= error.condition
      },
    },
    options,
  )
  parser.write(`<stream:stream xmlns='${XMLNS}' xmlns:stream='${STREAMS_NS}'>`)
  parser.write(data)
  return {
    elements,
    condition,
    complete: condition === undefined ? parser.betweenElements : undefined,
  }
}

function candidate(data: string, options: StreamParserOptions): Outcome {
  const read = new ElementReader(XMLNS, options).read(data)
  for (const el of read.elements) expect(el.parent).toBe(null)
  const condition = read.error?.condition
  return {
    elements: read.elements.map(canon),
    condition,
    complete: condition === undefined ? read.complete : undefined,
  }
}

function limitsFor(rng: Rng): StreamParserOptions {
  // The implied stream header (two attributes, 85 characters) must fit the limits too.
  if (rng.chance(0.6)) return {}
  return {
    ...(rng.chance(0.5) ? { maxStanzaSize: 100 + rng.int(250) } : {}),
    ...(rng.chance(0.4) ? { maxDepth: 1 + rng.int(4) } : {}),
    ...(rng.chance(0.4) ? { maxAttributes: 2 + rng.int(3) } : {}),
  }
}

const SEED = Number(process.env.ELEMENT_FUZZ_SEED ?? 0x7e57_0014)
const COUNT = Number(process.env.ELEMENT_FUZZ_COUNT ?? 6000)

describe('ElementReader reads what StreamParser reads, element for element and error for error', () => {
  test(
    `${COUNT} generated messages (seed ${SEED})`,
    () => {
      const rng = new Rng(SEED)
      const conditions = new Map<string, number>()
      let accepted = 0
      for (let n = 0; n < COUNT; n++) {
        const data = message(rng)
        const options = limitsFor(rng)
        // StreamParser holds back a string chunk's final high surrogate for the next chunk; a
        // message is whole, so ElementReader refuses it (checked below) where StreamParser waits.
        const last = data.charCodeAt(data.length - 1)
        if (last >= 0xd800 && last <= 0xdbff) {
          const read = new ElementReader(XMLNS, options).read(data)
          expect(read.error !== undefined || !read.complete).toBe(true)
          continue
        }
        const want = reference(data, options)
        const got = candidate(data, options)
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          expect(JSON.stringify({ data, options, got })).toEqual(
            JSON.stringify({ data, options, got: want }),
          )
        }
        const key = want.condition ?? (want.complete ? 'complete' : 'unfinished')
        conditions.set(key, (conditions.get(key) ?? 0) + 1)
        if (want.condition === undefined && want.elements.length === 1 && want.complete) accepted++
      }
      // The corpus reaches every outcome, so agreement means something.
      for (const key of [
        'complete',
        'unfinished',
        'not-well-formed',
        'restricted-xml',
        'bad-format',
        'policy-violation',
      ]) {
        expect(conditions.get(key) ?? 0, key).toBeGreaterThan(COUNT / 200)
      }
      expect(accepted).toBeGreaterThan(COUNT / 20)
      if (process.env.ELEMENT_FUZZ_SEED) console.info(accepted, conditions)
    },
    20_000 + COUNT / 5,
  )
})
