import { Element, parse } from 'ltx'
import { describe, expect, test } from 'vitest'
import { XMPPError } from '@core/errors'
import { escapeAttr, escapeText, STREAM_FOOTER, serialize, streamHeader } from './xml-serializer.js'

function message(body: string, attrs: Record<string, unknown> = {}): Element {
  const el = new Element('message', { xmlns: 'jabber:client', to: 'juliet@example.com', ...attrs })
  el.c('body').t(body)
  return el
}

function bodyOf(xml: string): string {
  return parse(xml).getChild('body')!.getText()
}

function thrown(fn: () => unknown): XMPPError {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(XMPPError)
    return e as XMPPError
  }
  throw new Error('expected an XMPPError')
}

// Deterministic pseudo-random numbers for the fuzz tests.
function rng(seed: number): () => number {
  let x = seed >>> 0
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 0x1_0000_0000
  }
}

const NASTY_PIECES = [
  'a',
  ' ',
  '&',
  '<',
  '>',
  '"',
  "'",
  ';',
  '#',
  '\t',
  '\n',
  '\r',
  '\r\n',
  ']]>',
  '&amp;',
  '&lt;',
  '&#60;',
  '<![CDATA[',
  '<!--',
  '-->',
  '<?x?>',
  'é',
  '😀',
  '\u007f',
  '\u0085',
  '\ufffd',
  '\ue000',
  '</body>',
  '"/>',
]

function nasty(next: () => number, len: number): string {
  let s = ''
  for (let i = 0; i < len; i++) s += NASTY_PIECES[Math.floor(next() * NASTY_PIECES.length)]
  return s
}

describe('escapeText()', () => {
  test('returns the very same string when nothing needs escaping', () => {
    const s = 'Hello, world! "quotes" and \'apostrophes\' stay; tab\tand\nnewline too. é 😀'
    expect(escapeText(s)).toBe(s)
    expect(escapeText('')).toBe('')
  })

  test('escapes & < > (and so ]]>)', () => {
    expect(escapeText('a & b < c > d')).toBe('a &amp; b &lt; c &gt; d')
    expect(escapeText(']]>')).toBe(']]&gt;')
    expect(escapeText('&amp;')).toBe('&amp;amp;')
    expect(escapeText('<<>>')).toBe('&lt;&lt;&gt;&gt;')
  })

  test('escapes CR, which a parser would otherwise turn into LF', () => {
    expect(escapeText('a\r\nb')).toBe('a&#13;\nb')
    expect(bodyOf(serialize(message('line1\r\nline2\rline3')))).toBe('line1\r\nline2\rline3')
  })
})

describe('escapeAttr()', () => {
  test('returns the very same string when nothing needs escaping', () => {
    const s = 'juliet@example.com/balcony é 😀'
    expect(escapeAttr(s)).toBe(s)
  })

  test('escapes & < > " \' and tab, LF, CR as character references', () => {
    expect(escapeAttr(`a&b<c>d"e'f`)).toBe('a&amp;b&lt;c&gt;d&quot;e&apos;f')
    expect(escapeAttr('x\ty\nz\rw')).toBe('x&#9;y&#10;z&#13;w')
  })
})

describe('serialize()', () => {
  test('matches ltx on ordinary stanzas', () => {
    const xmls = [
      '<message xmlns="jabber:client" to="juliet@capulet.example/balcony" from="romeo@montague.example/orchard" type="chat" id="ktx72v49"><body>Art thou not Romeo, and a Montague?</body><active xmlns="http://jabber.org/protocol/chatstates"/></message>',
      '<iq type="get" id="1"><query xmlns="jabber:iq:roster"/></iq>',
      '<presence><show>away</show><status>back &amp; forth &lt;soon&gt;</status><priority>5</priority></presence>',
    ]
    for (const xml of xmls) {
      const el = parse(xml)
      expect(serialize(el)).toBe(el.toString())
      expect(serialize(el)).toBe(xml)
    }
  })

  test('self-closes elements without children', () => {
    expect(serialize(new Element('x'))).toBe('<x/>')
    expect(serialize(new Element('x', { a: '1' }))).toBe('<x a="1"/>')
    expect(serialize(new Element('ping', { xmlns: 'urn:xmpp:ping' }))).toBe(
      '<ping xmlns="urn:xmpp:ping"/>',
    )
    // an empty text child still makes an element with content
    expect(serialize(new Element('x').t(''))).toBe('<x></x>')
  })

  test('a stanza-injection attempt in a body stays text', () => {
    const attack =
      '</body></message><iq type="set"><query xmlns="jabber:iq:roster"/></iq><message><body>'
    const xml = serialize(message(attack))
    expect(xml).not.toContain('<iq')
    expect(xml.split('</body>')).toHaveLength(2) // only the real end tag
    expect(xml).toContain('<body>&lt;/body&gt;&lt;/message&gt;&lt;iq type="set"&gt;')
    const back = parse(xml)
    expect(back.name).toBe('message')
    expect(back.children).toHaveLength(1)
    expect(back.getChild('body')!.children).toEqual([attack])
    expect(back.getChild('iq')).toBeUndefined()
  })

  test('an injection attempt in an attribute value stays in the value', () => {
    const attack = `x" type="error"><iq type='set'/><y a="`
    const xml = serialize(new Element('message', { to: attack, id: `'"'` }))
    const back = parse(xml)
    expect(back.attrs).toEqual({ to: attack, id: `'"'` })
    expect(back.children).toHaveLength(0)
  })

  test('attribute values with quotes, markup, tab, LF and CR round-trip', () => {
    const values = [`"double"`, `'single'`, `both " and '`, '<>&', '&amp;', 'a\tb\nc\rd', ' lead']
    for (const v of values) {
      const back = parse(serialize(new Element('x', { v })))
      expect(back.attrs.v).toBe(v)
    }
  })

  test('numbers are written in base 10; null and undefined attributes are omitted', () => {
    const el = new Element('x', { a: 1, b: null, c: undefined, d: 0, e: 2.5, f: '' })
    expect(serialize(el)).toBe('<x a="1" d="0" e="2.5" f=""/>')
  })

  test('number children become text; null and undefined children are skipped', () => {
    const el = new Element('x')
    el.children.push(
      42 as unknown as string,
      'a',
      null as unknown as string,
      -1.5 as unknown as string,
    )
    el.children.push(undefined as unknown as string)
    expect(serialize(el)).toBe('<x>42a-1.5</x>')
  })

  test('nested namespaces and prefixes are kept as written', () => {
    const xml =
      '<stream:features xmlns:stream="http://etherx.jabber.org/streams"><starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"><required/></starttls><mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms><x:y xmlns:x="urn:x" x:attr="v"><x:z/></x:y></stream:features>'
    const el = parse(xml)
    expect(serialize(el)).toBe(xml)
    const back = parse(serialize(el))
    expect(back.getChild('starttls')!.getNS()).toBe('urn:ietf:params:xml:ns:xmpp-tls')
    expect(back.getChild('y', 'urn:x')!.attrs['x:attr']).toBe('v')
  })

  test('mixed content and deep nesting', () => {
    let el = new Element('root')
    const top = el
    for (let i = 0; i < 200; i++) {
      el.t(`t${i}&`)
      el = el.c('n', { i })
    }
    const xml = serialize(top)
    expect(xml).toBe(top.toString())
    expect(serialize(parse(xml))).toBe(xml)
  })

  test('fuzz: nasty text and attribute values survive a round trip through ltx', () => {
    const next = rng(0x5eed)
    for (let round = 0; round < 300; round++) {
      const text = nasty(next, 1 + Math.floor(next() * 12))
      const attr = nasty(next, 1 + Math.floor(next() * 12))
      const el = new Element('message', { to: attr, id: String(round) })
      el.c('body').t(text)
      const xml = serialize(el)
      const back = parse(xml)
      expect(back.attrs.to).toBe(attr)
      expect(back.getChild('body')!.getText()).toBe(text)
      expect(back.children).toHaveLength(1)
      // and serialising what came back gives the same bytes
      expect(serialize(back)).toBe(xml)
    }
  })
})

describe('characters XML 1.0 does not allow', () => {
  const illegal = [
    '\u0000',
    '\u0001',
    '\u0008',
    '\u000b',
    '\u000c',
    '\u000e',
    '\u001f',
    '\ufffe',
    '\uffff',
    '\ud800', // lone high surrogate
    '\udbff',
    '\udc00', // lone low surrogate
    '\udfff',
  ]

  test.each(illegal)('%j is refused in text and attributes', (ch) => {
    for (const fn of [
      () => escapeText(`ab${ch}`),
      () => escapeAttr(`ab${ch}`),
      () => serialize(message(`ab${ch}`)),
      () => serialize(new Element('x', { a: `ab${ch}` })),
      () => serialize(new Element('x').t(`ab${ch}&`)), // also when other escaping is needed
    ]) {
      const e = thrown(fn)
      expect(e.code).toBe('invalid-xml-char')
      expect(e.message).toContain(
        `U+${ch.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`,
      )
      expect(e.message).toContain('at index 2')
    }
  })

  test('the error says where the character is', () => {
    expect(thrown(() => serialize(message('hi\u0001'))).message).toBe(
      'character U+0001 at index 2 of text of <body> is not allowed in XML 1.0',
    )
    expect(thrown(() => serialize(new Element('iq', { id: '\u0000' }))).message).toBe(
      'character U+0000 at index 0 of attribute id of <iq> is not allowed in XML 1.0',
    )
    expect(thrown(() => escapeText('a\ufffe')).message).toBe(
      'character U+FFFE at index 1 of text is not allowed in XML 1.0',
    )
  })

  test('surrogates in the wrong order are refused', () => {
    expect(() => escapeText('\udc00\ud800')).toThrow(XMPPError)
    expect(() => escapeText('😀'.slice(0, 1))).toThrow(XMPPError)
    expect(() => escapeAttr('x😀'.slice(0, 2))).toThrow(XMPPError)
  })

  test('legal edge characters pass', () => {
    const s = 'tab\t lf\n del\u007f nel\u0085 \ud7ff \ue000 \ufffd 😀 \u{10ffff} \u{10000}'
    expect(escapeText(s)).toBe(s)
    expect(
      parse(serialize(message(s)))
        .getChild('body')!
        .getText(),
    ).toBe(s)
    expect(parse(serialize(new Element('x', { s }))).attrs.s).toBe(s)
  })
})

describe('names', () => {
  test.each(['a b', '1x', '', 'a>b', 'a"b', 'a=b', 'a/b', '-x', '<x'])(
    'element name %j is refused',
    (name) => {
      const e = thrown(() => serialize(new Element(name)))
      expect(e.code).toBe('invalid-xml-name')
    },
  )

  test('attribute names are checked too', () => {
    const el = new Element('x')
    el.attrs['a"><evil'] = 'v'
    expect(thrown(() => serialize(el)).code).toBe('invalid-xml-name')
    const el2 = new Element('x')
    el2.attrs['on click'] = 'v'
    expect(thrown(() => serialize(el2)).code).toBe('invalid-xml-name')
  })

  test('non-ASCII and prefixed names are fine', () => {
    expect(serialize(new Element('café', { 'xml:lang': 'fr', 'ns:été': '1' }))).toBe(
      '<café xml:lang="fr" ns:été="1"/>',
    )
    expect(serialize(new Element('_x.y-z1'))).toBe('<_x.y-z1/>')
    // XML 1.0 §2.3: supplementary characters (a surrogate pair) up to U+EFFFF, '·' after the first.
    expect(serialize(new Element('\u{10000}a\u00b7\u{effff}'))).toBe('<\u{10000}a\u00b7\u{effff}/>')
  })

  test.each(['\u{f0000}', '\ud800', 'a\udc00', '\u00b7a', '\u00d7', 'a\u00d7'])(
    'non-ASCII name %j outside XML 1.0 Name is refused',
    (name) => {
      expect(thrown(() => serialize(new Element(name))).code).toBe('invalid-xml-name')
    },
  )
})

describe('stream header and footer', () => {
  test('streamHeader() writes the XML declaration and an unclosed stream tag', () => {
    expect(
      streamHeader({
        to: 'example.com',
        from: undefined,
        version: '1.0',
        'xml:lang': 'en',
        xmlns: 'jabber:client',
        'xmlns:stream': 'http://etherx.jabber.org/streams',
      }),
    ).toBe(
      "<?xml version='1.0'?><stream:stream to='example.com' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
    )
  })

  test('streamHeader() escapes values', () => {
    expect(streamHeader({ to: `a'b"c<d>&` })).toBe(
      "<?xml version='1.0'?><stream:stream to='a&apos;b&quot;c&lt;d&gt;&amp;'>",
    )
    expect(() => streamHeader({ to: 'a\u0000' })).toThrow(XMPPError)
    expect(() => streamHeader({ 'bad name': 'x' })).toThrow(XMPPError)
  })

  test('header + content + footer parse as one document', () => {
    const header = streamHeader({
      to: 'example.com',
      xmlns: 'jabber:client',
      'xmlns:stream': 'http://etherx.jabber.org/streams',
    })
    const doc = parse(`${header}${serialize(message('hi & bye'))}${STREAM_FOOTER}`)
    expect(doc.name).toBe('stream:stream')
    expect(doc.attrs.to).toBe('example.com')
    expect(doc.getChild('message')!.getChildText('body')).toBe('hi & bye')
  })

  test('STREAM_FOOTER', () => {
    expect(STREAM_FOOTER).toBe('</stream:stream>')
  })
})
