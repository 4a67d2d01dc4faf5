import { describe, expect, test } from 'vitest'
import { SASLprepError } from './errors.js'
import { saslprep } from './saslprep.js'

function refusal(input: string): SASLprepError {
  try {
    saslprep(input)
  } catch (error) {
    if (error instanceof SASLprepError) return error
    throw error
  }
  throw new Error('saslprep accepted the string')
}

describe('saslprep (RFC 4013)', () => {
  // RFC 4013 §3: the examples.
  test.each([
    ['I\u00ADX', 'IX', 'SOFT HYPHEN mapped to nothing'],
    ['user', 'user', 'no transformation'],
    ['USER', 'USER', 'case preserved'],
    ['\u00AA', 'a', 'output is NFKC'],
    ['\u2168', 'IX', 'output is NFKC'],
  ])('%j -> %j (%s)', (input, output) => {
    expect(saslprep(input)).toBe(output)
  })

  test('\\u0007 is a prohibited ASCII control character', () => {
    const error = refusal('\u0007')
    expect(error.code).toBe('saslprep')
    expect(error.table).toBe('C.2.1')
    expect(error.message).toContain('ASCII control')
  })

  test('\\u0627\\u0031 breaks the bidi rule (RFC 3454 §6)', () => {
    const error = refusal('\u0627\u0031')
    expect(error.code).toBe('saslprep')
    expect(error.table).toBe('bidi')
  })

  test('non-ASCII spaces become U+0020 and zero-width characters disappear', () => {
    expect(saslprep('a\u00A0b\u3000c')).toBe('a b c')
    expect(saslprep('a\u200Bb\uFEFFc\u180Bd')).toBe('abcd')
  })

  test('NFKC applies to compatibility characters and composes', () => {
    expect(saslprep('\uFB01')).toBe('fi')
    expect(saslprep('e\u0301')).toBe('\u00E9')
    expect(saslprep('\uFF21')).toBe('A')
  })

  test.each([
    ['\u0000', 'C.2.1'],
    ['a\u007Fb', 'C.2.1'],
    ['\u0085', 'C.2.2'],
    ['x\u2028', 'C.2.2'],
    ['\uE000', 'C.3'],
    ['\u{F0000}', 'C.3'],
    ['\uFDD0', 'C.4'],
    ['\u{1FFFE}', 'C.4'],
    ['\uD800', 'C.5'],
    ['a\uDC00b', 'C.5'],
    ['\uFFFD', 'C.6'],
    ['\u2FF0', 'C.7'],
    ['\u200E', 'C.8'],
    ['\u202E', 'C.8'],
    ['\u{E0001}', 'C.9'],
    ['\u{E0041}', 'C.9'],
    // The edges of the encoded ranges (stringprep-tables.ts): first, last, one past each.
    ['\u001F', 'C.2.1'],
    ['\u{1D17A}', 'C.2.2'],
    ['\u{10FFFD}', 'C.3'],
    ['\u{10FFFF}', 'C.4'],
    ['\u{E007F}', 'C.9'],
  ])('%j is prohibited (table %s)', (input, table) => {
    expect(refusal(input).table).toBe(table)
  })

  test('the encoded tables end where RFC 3454 ends them', () => {
    expect(saslprep('\u{1D17B}')).toBe('\u{1D17B}') // past C.2.2's last range
    expect(saslprep('\u{E0080}')).toBe('\u{E0080}') // past C.9
    expect(saslprep('\u05D0\u05EA')).toBe('\u05D0\u05EA') // D.1's 5d0-5ea
    expect(refusal('\u05D0\u05EB').table).toBe('bidi') // one past it: not right-to-left
  })

  test('strings of right-to-left characters are fine when they start and end with one', () => {
    expect(saslprep('\u0627\u0628')).toBe('\u0627\u0628')
    expect(saslprep('\u05D0\u0031\u05D1')).toBe('\u05D0\u0031\u05D1')
  })

  test('right-to-left and left-to-right characters may not mix', () => {
    expect(refusal('\u0627a\u0628').table).toBe('bidi')
    expect(refusal('a\u05D0').table).toBe('bidi')
    expect(refusal('\u0031\u05D0').table).toBe('bidi')
  })

  test('the error names the rule, never the string', () => {
    const secret = 'hunter\u0007two'
    const error = refusal(secret)
    expect(error.message).not.toContain('hunter')
    expect(error.message).not.toContain('two')
    expect(JSON.stringify(error)).not.toContain('hunter')
  })

  test('printable ASCII is unchanged, including spaces and punctuation', () => {
    const all = Array.from({ length: 95 }, (_, i) => String.fromCharCode(0x20 + i)).join('')
    expect(saslprep(all)).toBe(all)
  })

  test('unassigned code points are allowed (query strings)', () => {
    // U+0870 was unassigned in Unicode 3.2.
    expect(saslprep('\u0870')).toBe('\u0870')
  })
})
