import { describe, expect, test } from 'vitest'
import { JIDError } from '@core/errors'
import { bareString, escapeLocal, isValidJID, JID, jid, sameBareJID, unescapeLocal } from './jid.js'

function parts(s: string): [string, string, string] {
  const j = JID.parse(s)
  return [j.local, j.domain, j.resource]
}

function parseError(s: string): JIDError {
  try {
    JID.parse(s)
  } catch (e) {
    expect(e).toBeInstanceOf(JIDError)
    return e as JIDError
  }
  throw new Error(`expected ${JSON.stringify(s)} to be rejected`)
}

describe('JID.parse: structure (RFC 7622 §3.1)', () => {
  test.each([
    ['example.com', ['', 'example.com', '']],
    ['user@example.com', ['user', 'example.com', '']],
    ['user@example.com/res', ['user', 'example.com', 'res']],
    ['example.com/res', ['', 'example.com', 'res']],
    ['a@b', ['a', 'b', '']],
    ['localhost', ['', 'localhost', '']],
  ] as const)('%s', (input, expected) => {
    expect(parts(input)).toEqual(expected)
  })

  test('a string parsed again (a sender that repeats) gives the same JID, and an invalid one still fails', () => {
    const first = JID.parse('Juliet@Capulet.lit/balcony')
    // Built as another string object with the same text, as each stanza's attribute is.
    const again = JID.parse(['Juliet@Capulet.lit', 'balcony'].join('/'))
    expect(again).toBe(first)
    expect([again.local, again.domain, again.resource]).toEqual([
      'juliet',
      'capulet.lit',
      'balcony',
    ])
    expect(JID.parse('Juliet@Capulet.lit/Balcony').resource).toBe('Balcony')
    // Shared, so frozen: a caller writing to it (plain JavaScript) cannot change the other's.
    expect(() => {
      ;(again as { local: string }).local = 'romeo'
    }).toThrow(TypeError)
    expect(first.local).toBe('juliet')
    expect(first.bare().toString()).toBe('juliet@capulet.lit')
    for (let k = 0; k < 600; k++) expect(JID.parse(`u${k}@example.com/r`).local).toBe(`u${k}`)
    expect(JID.parse('Juliet@Capulet.lit/balcony').equals(first)).toBe(true)
    parseError('a@@b')
    parseError('a@@b')
    expect(JID.tryParse('a@@b')).toBeUndefined()
  })

  test('the resource is everything after the first "/", including "/" and "@"', () => {
    expect(parts('user@example.com/a/b@c/d')).toEqual(['user', 'example.com', 'a/b@c/d'])
    expect(parts('example.com/user@host')).toEqual(['', 'example.com', 'user@host'])
    expect(parts('a@b/@')).toEqual(['a', 'b', '@'])
    expect(parts('a@b//')).toEqual(['a', 'b', '/'])
  })

  test('the resource may contain spaces and keeps its case', () => {
    expect(parts('a@b/My Laptop  ')).toEqual(['a', 'b', 'My Laptop  '])
    expect(parts('a@b/ ')).toEqual(['a', 'b', ' '])
  })

  test.each([
    ['', /domainpart is missing/],
    ['@example.com', /localpart before "@" is empty/],
    ['user@', /domainpart is missing/],
    ['user@/res', /domainpart is missing/],
    ['/res', /domainpart is missing/],
    ['example.com/', /resourcepart after "\/" is empty/],
    ['user@example.com/', /resourcepart after "\/" is empty/],
    ['@', /localpart before "@" is empty/],
    ['a@b@c', /localpart "a@b" contains forbidden character U\+0040/],
  ])('rejects %j', (input, message) => {
    const e = parseError(input)
    expect(e.message).toMatch(message)
    expect(e.code).toBe('invalid-jid')
    expect(e.condition).toBe('jid-malformed')
    expect(e.message).toContain(JSON.stringify(input))
  })

  test('non-strings are rejected with a JIDError', () => {
    expect(() => JID.parse(undefined as unknown as string)).toThrow(JIDError)
    expect(() => new JID('a', undefined as unknown as string)).toThrow(JIDError)
  })
})

describe('localpart (RFC 7622 §3.3)', () => {
  test.each(['"', '&', "'", '/', ':', '<', '>', '@'])('forbids %j', (ch) => {
    // '/' and '@' cannot be reached through parse() as localpart characters (they split), so
    // go through the constructor, which validates each part on its own.
    expect(() => new JID(`a${ch}b`, 'example.com')).toThrow(JIDError)
    expect(() => new JID(`a${ch}b`, 'example.com')).toThrow(/localpart/)
    if (ch !== '/' && ch !== '@') expect(isValidJID(`a${ch}b@example.com`)).toBe(false)
  })

  test.each([
    [' ', 'space'],
    ['\t', 'tab'],
    ['\n', 'LF'],
    ['\r', 'CR'],
    ['\u0000', 'NUL'],
    ['\u001f', 'US'],
    ['\u007f', 'DEL'],
    ['\u0085', 'NEL'],
    ['\u00a0', 'no-break space'],
    ['\u2003', 'em space'],
    ['\u3000', 'ideographic space'],
    ['\u2028', 'line separator'],
  ])('forbids %j (%s)', (ch) => {
    expect(isValidJID(`a${ch}b@example.com`)).toBe(false)
    expect(() => new JID(`a${ch}b`, 'example.com')).toThrow(JIDError)
  })

  test('error names the character and its position', () => {
    expect(parseError('ab<c@example.com').message).toBe(
      'invalid JID "ab<c@example.com": localpart "ab<c" contains forbidden character U+003C (<) at index 2',
    )
    expect(parseError('a\u0001b@x').message).toContain('U+0001 at index 1')
  })

  test('is case-folded and NFC-normalised', () => {
    expect(JID.parse('USER@example.com').local).toBe('user')
    expect(JID.parse('ÉLODIE@example.com').local).toBe('élodie')
    // decomposed e + combining acute -> precomposed é
    expect(JID.parse('e\u0301lodie@example.com').local).toBe('\u00e9lodie')
    expect(JID.parse('ΣΑΣ@example.com').local).toBe('σας') // Unicode toLowerCase, final sigma included
  })

  test('fullwidth forms are width-mapped, so a fullwidth "@" is still forbidden', () => {
    expect(JID.parse('ＵＳＥＲ@example.com').local).toBe('user')
    expect(isValidJID('a＠b@example.com')).toBe(false)
    expect(isValidJID('a＜b@example.com')).toBe(false)
  })

  test('non-ASCII letters, digits and ASCII punctuation that is allowed', () => {
    for (const l of [
      'juliet',
      'ñandú',
      '東京',
      'user.name+tag',
      'a_b-c',
      'x=1',
      'a\\b',
      'ü',
      '*',
    ]) {
      expect(isValidJID(`${l}@example.com`), l).toBe(true)
    }
  })

  test('lone surrogates are rejected', () => {
    expect(isValidJID('a\ud800@example.com')).toBe(false)
    expect(isValidJID('a\udc00b@example.com')).toBe(false)
    expect(isValidJID('\ud83d\ude00@example.com')).toBe(true)
  })
})

describe('length limits: 1..1023 bytes of UTF-8 per part (RFC 7622 §3.2-§3.4)', () => {
  const ascii = (n: number) => 'a'.repeat(n)

  test('localpart', () => {
    expect(isValidJID(`${ascii(1023)}@example.com`)).toBe(true)
    expect(parseError(`${ascii(1024)}@example.com`).message).toMatch(/localpart is 1024 bytes/)
    // é is 2 bytes: 511 of them = 1022 bytes, plus 'a' = 1023
    expect(isValidJID(`${'é'.repeat(511)}a@example.com`)).toBe(true)
    expect(isValidJID(`${'é'.repeat(512)}@example.com`)).toBe(false) // 1024 bytes, 512 chars
    // 3-byte characters: 341 * 3 = 1023
    expect(isValidJID(`${'東'.repeat(341)}@example.com`)).toBe(true)
    expect(isValidJID(`${'東'.repeat(341)}a@example.com`)).toBe(false)
    // 4-byte characters (surrogate pairs, 2 UTF-16 units each): 255 * 4 = 1020
    expect(isValidJID(`${'😀'.repeat(255)}abc@example.com`)).toBe(true)
    expect(isValidJID(`${'😀'.repeat(256)}@example.com`)).toBe(false)
  })

  test('resourcepart', () => {
    expect(isValidJID(`a@example.com/${ascii(1023)}`)).toBe(true)
    expect(parseError(`a@example.com/${ascii(1024)}`).message).toMatch(/resourcepart is 1024 bytes/)
    expect(isValidJID(`a@example.com/${'é'.repeat(511)}x`)).toBe(true)
    expect(isValidJID(`a@example.com/${'é'.repeat(512)}`)).toBe(false)
  })

  test('domainpart', () => {
    // labels of 63 characters separated by dots: 16 * 64 - 1 = 1023 characters
    const label = ascii(63)
    const d1023 = Array.from({ length: 16 }, () => label).join('.')
    expect(d1023.length).toBe(1023)
    expect(isValidJID(d1023)).toBe(true)
    expect(isValidJID(`${d1023}.`)).toBe(true) // trailing dot is stripped before counting
    expect(parseError(`b${d1023}`).message).toMatch(/label of 64/)
    expect(parseError(`b.${d1023}`).message).toMatch(/domainpart is 1025 bytes/)
  })

  test('ASCII labels are limited to 63 characters', () => {
    expect(isValidJID(`${ascii(63)}.example`)).toBe(true)
    expect(isValidJID(`${ascii(64)}.example`)).toBe(false)
  })
})

describe('domainpart (RFC 7622 §3.2)', () => {
  test('is lowercased', () => {
    expect(JID.parse('EXAMPLE.Com').domain).toBe('example.com')
    expect(JID.parse('ÉXAMPLE.com').domain).toBe('éxample.com')
  })

  test('one trailing dot is stripped, two are an error', () => {
    expect(JID.parse('user@example.com.').domain).toBe('example.com')
    expect(JID.parse('user@example.com./res').toString()).toBe('user@example.com/res')
    expect(isValidJID('user@example.com..')).toBe(false)
    expect(isValidJID('.')).toBe(false)
    expect(isValidJID('user@.')).toBe(false)
  })

  test.each([
    'exa mple.com',
    'example.com:5222',
    'a..b',
    '.example.com',
    '-example.com',
    'example-.com',
    'exa<mple.com',
    'exa>mple.com',
    'exa"mple.com',
    "exa'mple.com",
    'exa&mple.com',
    'exa!mple.com',
    'exa\\mple.com',
    'exa\tmple.com',
    'exa\u0000mple.com',
    'exa\u00a0mple.com',
    'exa\u3000mple.com',
    '例え<.jp',
    '[::1',
    '::1',
    '[::1]x',
    '[1::2::3]',
    '[1:2:3:4:5:6:7:8:9]',
    '[1:2:3:4:5:6:7]',
    '[12345::]',
    '[::g]',
    '[fe80::1%eth0]',
    '[::ffff:1.2.3.256]',
    '[1.2.3.4]',
    '[]',
    '[::\t1]',
    '[::1\n]',
    '[::01.2.3.4]',
    '[1:2:3:4:5:6:7:8::]',
    '[[::1]]',
  ])('rejects %j', (d) => {
    expect(isValidJID(d)).toBe(false)
    expect(isValidJID(`user@${d}/res`)).toBe(false)
    expect(() => new JID('user', d)).toThrow(JIDError)
  })

  test.each([
    ['[::1]', '[::1]'],
    ['[::]', '[::]'],
    ['[2001:DB8::1]', '[2001:db8::1]'],
    ['[2001:db8:0:0:0:0:0:1]', '[2001:db8:0:0:0:0:0:1]'],
    ['[1:2:3:4:5:6:7::]', '[1:2:3:4:5:6:7::]'],
    ['[::ffff:192.0.2.1]', '[::ffff:192.0.2.1]'],
    ['[1:2:3:4:5:6:1.2.3.4]', '[1:2:3:4:5:6:1.2.3.4]'],
    ['192.0.2.1', '192.0.2.1'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['_xmpp.example', '_xmpp.example'],
    ['a-b.c-d', 'a-b.c-d'],
    ['bücher.example', 'bücher.example'],
    ['例え。テスト', '例え.テスト'], // ideographic full stop is a label separator
    ['ｅｘａｍｐｌｅ．ｃｏｍ', 'example.com'], // fullwidth forms are width-mapped
  ])('accepts %j as %j', (input, domain) => {
    expect(JID.parse(`user@${input}/r`).domain).toBe(domain)
    expect(new JID('', input).domain).toBe(domain)
  })

  test('IPv6 literal with local and resource', () => {
    const j = JID.parse('admin@[2001:DB8::CAFE]/a:b')
    expect(j.local).toBe('admin')
    expect(j.domain).toBe('[2001:db8::cafe]')
    expect(j.resource).toBe('a:b')
    expect(j.toString()).toBe('admin@[2001:db8::cafe]/a:b')
  })
})

describe('resourcepart (RFC 7622 §3.4)', () => {
  test('keeps case, is NFC-normalised, maps non-ASCII spaces to U+0020', () => {
    expect(JID.parse('a@b/Res').resource).toBe('Res')
    expect(JID.parse('a@b/e\u0301').resource).toBe('\u00e9')
    expect(JID.parse('a@b/x\u00a0y\u3000z').resource).toBe('x y z')
    expect(JID.parse('a@b/ＦＵＬＬ').resource).toBe('ＦＵＬＬ') // no width mapping in OpaqueString
    expect(JID.parse('a@b/😀 phone').resource).toBe('😀 phone')
  })

  test.each(['\u0000', '\t', '\n', '\r', '\u001b', '\u007f', '\u0085', '\ud800'])(
    'forbids %j',
    (ch) => {
      expect(isValidJID(`a@b/x${ch}y`)).toBe(false)
      expect(() => new JID('a', 'b', `x${ch}`)).toThrow(/resourcepart/)
    },
  )

  test('allows the characters a localpart forbids', () => {
    expect(JID.parse('a@b/"&\'/:<>@').resource).toBe('"&\'/:<>@')
  })
})

describe('equality and normalisation', () => {
  test('localpart and domainpart are case-insensitive; resource is not', () => {
    const j = JID.parse('User@Example.COM/Res')
    expect(j.toString()).toBe('user@example.com/Res')
    expect(j.equals('user@example.com/Res')).toBe(true)
    expect(j.equals(JID.parse('USER@EXAMPLE.COM/Res'))).toBe(true)
    expect(j.equals('user@example.com/res')).toBe(false)
    expect(j.equals('user@example.com')).toBe(false)
    expect(j.bare().equals('user@example.com')).toBe(true)
    expect(j.equals('user@example.com./Res')).toBe(true)
  })

  test('equals() with an invalid string or a non-JID is false', () => {
    const j = JID.parse('a@b')
    expect(j.equals('a b@b')).toBe(false)
    expect(j.equals('')).toBe(false)
    expect(j.equals(undefined as unknown as string)).toBe(false)
    expect(j.equals(42 as unknown as string)).toBe(false)
  })

  test('equivalent Unicode spellings are equal', () => {
    expect(JID.parse('E\u0301@b').equals('\u00e9@b')).toBe(true)
    expect(JID.parse('a@B\u00dcCHER.example').equals('a@bu\u0308cher.example')).toBe(true)
  })

  test('parse(toString()) round-trips', () => {
    for (const s of [
      'User@Example.COM/Res',
      'İstanbul@example.com',
      'ＵＳＥＲ@例え。テスト/ｒ e s',
      '[::1]/x',
      'a@b/c/d@e',
    ]) {
      const j = JID.parse(s)
      const again = JID.parse(j.toString())
      expect(again).toEqual(j)
      expect(again.toString()).toBe(j.toString())
    }
  })

  test('constructor normalises each part; "" means absent', () => {
    const j = new JID('User', 'Example.COM.', 'Res')
    expect(j.toString()).toBe('user@example.com/Res')
    expect(new JID('', 'example.com').toString()).toBe('example.com')
    expect(new JID('', 'example.com', 'r').toString()).toBe('example.com/r')
    expect(() => new JID('a', '')).toThrow(/domainpart is empty/)
  })
})

describe('JID methods', () => {
  test('bare() returns itself for a bare JID and is cached otherwise', () => {
    const b = JID.parse('a@b')
    expect(b.bare()).toBe(b)
    expect(b.isBare()).toBe(true)
    const f = JID.parse('a@b/r')
    expect(f.isBare()).toBe(false)
    expect(f.bare()).toBe(f.bare())
    expect(f.bare().toString()).toBe('a@b')
    expect(f.bare().isBare()).toBe(true)
  })

  test('toString() is cached', () => {
    const j = JID.parse('a@b/r')
    expect(j.toString()).toBe(j.toString())
    expect(`${j}`).toBe('a@b/r')
    expect(String(JID.parse('example.com'))).toBe('example.com')
  })

  test('withResource()', () => {
    const j = JID.parse('A@B/one')
    const k = j.withResource('Two\u00a0Words')
    expect(k.toString()).toBe('a@b/Two Words')
    expect(j.toString()).toBe('a@b/one')
    expect(j.withResource('')).toBe(j.bare())
    expect(() => j.withResource('bad\u0000')).toThrow(JIDError)
    expect(() => j.withResource('x'.repeat(1024))).toThrow(JIDError)
  })

  test('fields are read-only data and compare structurally', () => {
    expect(JID.parse('a@b/c')).toEqual(new JID('A', 'B', 'c'))
    expect({ ...JID.parse('a@b/c') }).toEqual({ local: 'a', domain: 'b', resource: 'c' })
  })

  test('jid() is JID.parse(); tryParse() and isValidJID() do not throw', () => {
    expect(jid('a@b/c')).toEqual(JID.parse('a@b/c'))
    expect(() => jid('a b@c')).toThrow(JIDError)
    expect(JID.tryParse('a b@c')).toBeUndefined()
    expect(JID.tryParse('a@b')?.local).toBe('a')
    expect(isValidJID('a@b')).toBe(true)
    expect(isValidJID('')).toBe(false)
    // after a quiet failure, parse() still throws real errors
    expect(() => JID.parse('a b@c')).toThrow(JIDError)
  })
})

describe('bareString() and sameBareJID()', () => {
  test.each([
    ['User@Example.COM/Res', 'user@example.com'],
    ['user@example.com', 'user@example.com'],
    ['example.com/x', 'example.com'],
    ['a@example.com./x', 'a@example.com'],
    ['ÉLODIE@Example.com/r', 'élodie@example.com'],
    ['a@b/ÜÜ', 'a@b'],
    ['[::1]/x', '[::1]'],
  ])('bareString(%j) = %j', (input, expected) => {
    expect(bareString(input)).toBe(expected)
    expect(bareString(input)).toBe(JID.parse(input).bare().toString())
  })

  test('bareString() never throws', () => {
    expect(bareString('')).toBe('')
    expect(bareString('a b@ü c/x')).toBe('a b@ü c')
  })

  test('bareString() returns the same string when already normalised', () => {
    const s = 'user@example.com'
    expect(bareString(s)).toBe(s)
  })

  test.each([
    ['user@example.com', 'user@example.com', true],
    ['User@Example.COM/a', 'user@example.com/b', true],
    ['user@example.com.', 'USER@EXAMPLE.COM/x', true],
    ['example.com', 'EXAMPLE.com/res', true],
    ['user@example.com', 'user@example.org', false],
    ['user@example.com', 'example.com', false],
    ['a@b', 'b@a', false],
    ['a@b', 'a@bc', false],
    ['élodie@example.com', 'ÉLODIE@example.com/r', true],
    ['e\u0301@b', '\u00e9@B', true],
    ['ü@b', 'u@b', false],
    ['a@b/ü', 'A@B/x', true],
    ['', '', true],
  ])('sameBareJID(%j, %j) = %s', (a, b, expected) => {
    expect(sameBareJID(a, b)).toBe(expected)
    expect(sameBareJID(b, a)).toBe(expected)
  })

  test('sameBareJID() agrees with parsing on valid JIDs', () => {
    const all = [
      'a@b',
      'A@B/x',
      'a@b./y',
      'ab@c',
      'a@bc',
      'b',
      'B/r',
      'ä@b',
      'Ä@b',
      'a\u0308@b',
      'a@ä',
      'x@[::1]',
    ]
    for (const a of all) {
      for (const b of all) {
        const expected = JID.parse(a).bare().equals(JID.parse(b).bare())
        expect(sameBareJID(a, b), `${a} vs ${b}`).toBe(expected)
      }
    }
  })
})

describe('XEP-0106 escaping', () => {
  // The examples from XEP-0106 §5 (table of transformations).
  test.each([
    ['space cadet', 'space\\20cadet'],
    ['call me "ishmael"', 'call\\20me\\20\\22ishmael\\22'],
    ['at&t guy', 'at\\26t\\20guy'],
    ["d'artagnan", 'd\\27artagnan'],
    ['/.fanboy', '\\2f.fanboy'],
    ['::foo::', '\\3a\\3afoo\\3a\\3a'],
    ['<foo>', '\\3cfoo\\3e'],
    ['user@host', 'user\\40host'],
    ['c:\\net', 'c\\3a\\net'],
    ['c:\\\\net', 'c\\3a\\\\net'],
    ['c:\\cool stuff', 'c\\3a\\cool\\20stuff'],
    ['c:\\5commas', 'c\\3a\\5c5commas'],
  ])('%j <-> %j', (raw, escaped) => {
    expect(escapeLocal(raw)).toBe(escaped)
    expect(unescapeLocal(escaped)).toBe(raw)
    // and the escaped form is a valid localpart
    expect(isValidJID(`${escaped}@example.com`)).toBe(true)
  })

  test('round trips, including literal escape-like sequences', () => {
    for (const raw of [
      'plain',
      '\\20',
      '\\5c',
      '\\5c20',
      'a\\b',
      '\\',
      'a@b/c:d',
      '\\2F',
      'x\\40y@z',
    ]) {
      expect(unescapeLocal(escapeLocal(raw)), raw).toBe(raw)
    }
  })

  test('unescapeLocal() only decodes the ten sequences', () => {
    expect(unescapeLocal('a\\41b')).toBe('a\\41b')
    expect(unescapeLocal('a\\2')).toBe('a\\2')
    expect(unescapeLocal('\\5c20')).toBe('\\20') // single left-to-right pass
    expect(unescapeLocal('nothing')).toBe('nothing')
  })

  test('a leading or trailing space cannot be escaped', () => {
    expect(() => escapeLocal(' lead')).toThrow(JIDError)
    expect(() => escapeLocal('trail ')).toThrow(JIDError)
  })

  test('escaped localparts survive parse and case folding', () => {
    const j = JID.parse(`${escapeLocal('Jean Dupont@Corp')}@gateway.example`)
    expect(j.local).toBe('jean\\20dupont\\40corp')
    expect(unescapeLocal(j.local)).toBe('jean dupont@corp')
  })
})
