import { SASLprepError } from './errors.js'
import * as tables from './stringprep-tables.js'

/** A set of code points read from a generated table, parsed on first use. */
class CodePoints {
  readonly #spec: string
  #ranges: Uint32Array | undefined

  constructor(spec: string) {
    this.#spec = spec
  }

  has(cp: number): boolean {
    this.#ranges ??= parseRanges(this.#spec)
    const ranges = this.#ranges
    // Binary search over [start, end] pairs.
    let lo = 0
    let hi = ranges.length / 2 - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (cp < (ranges[mid * 2] as number)) hi = mid - 1
      else if (cp > (ranges[mid * 2 + 1] as number)) lo = mid + 1
      else return true
    }
    return false
  }
}

/** [start, end] pairs from a table of stringprep-tables.ts (gaps and lengths, base 36). */
function parseRanges(spec: string): Uint32Array {
  const tokens = spec.split(' ')
  const out = new Uint32Array(tokens.length * 2)
  let end = -1
  tokens.forEach((token, i) => {
    const [gap, length = '0'] = token.split('.')
    const start = end + 1 + Number.parseInt(gap as string, 36)
    end = start + Number.parseInt(length, 36)
    out[i * 2] = start
    out[i * 2 + 1] = end
  })
  return out
}

const MAPPED_TO_NOTHING = new CodePoints(tables.B_1)
const NON_ASCII_SPACE = new CodePoints(tables.C_1_2)
const RAND_AL = new CodePoints(tables.D_1)
const L = new CodePoints(tables.D_2)

/** RFC 4013 §2.3: the tables of prohibited output, with what each holds. */
const PROHIBITED: readonly [string, string, CodePoints][] = [
  ['C.1.2', 'a non-ASCII space character', NON_ASCII_SPACE],
  ['C.2.1', 'an ASCII control character', new CodePoints(tables.C_2_1)],
  ['C.2.2', 'a non-ASCII control character', new CodePoints(tables.C_2_2)],
  ['C.3', 'a private use character', new CodePoints(tables.C_3)],
  ['C.4', 'a non-character code point', new CodePoints(tables.C_4)],
  ['C.5', 'a surrogate code point', new CodePoints(tables.C_5)],
  ['C.6', 'a character inappropriate for plain text', new CodePoints(tables.C_6)],
  ['C.7', 'a character inappropriate for canonical representation', new CodePoints(tables.C_7)],
  ['C.8', 'a display-changing or deprecated character', new CodePoints(tables.C_8)],
  ['C.9', 'a tagging character', new CodePoints(tables.C_9)],
]

/** Printable ASCII is left unchanged by every step: the common case costs one test. */
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/

/**
 * SASLprep (RFC 4013): prepares a username or password for SASL. Unassigned code points are
 * allowed (a "query" string, RFC 3454 §7). NFKC uses the platform's Unicode version, not
 * Unicode 3.2; the tables are those of RFC 3454. Throws SASLprepError (code `saslprep`)
 * naming the broken rule; the error never contains the string itself.
 */
export function saslprep(input: string): string {
  if (typeof input !== 'string') throw new TypeError('saslprep() takes a string')
  if (PRINTABLE_ASCII.test(input)) return input

  // RFC 4013 §2.1: non-ASCII spaces become U+0020; B.1 characters are removed.
  let mapped = ''
  for (const ch of input) {
    const cp = ch.codePointAt(0) as number
    if (MAPPED_TO_NOTHING.has(cp)) continue
    mapped += NON_ASCII_SPACE.has(cp) ? ' ' : ch
  }

  // RFC 4013 §2.2: Unicode normalization form KC.
  const output = mapped.normalize('NFKC')

  // RFC 4013 §2.3 (prohibited output) and §2.4 (RFC 3454 §6 bidirectional rules).
  let randAL = false
  let leftToRight = false
  let first = true
  let firstIsRandAL = false
  let lastIsRandAL = false
  for (const ch of output) {
    const cp = ch.codePointAt(0) as number
    for (const [table, what, set] of PROHIBITED) {
      if (set.has(cp)) {
        throw new SASLprepError(table, `SASLprep: ${what} is prohibited (RFC 3454 table ${table})`)
      }
    }
    const isRandAL = RAND_AL.has(cp)
    if (isRandAL) randAL = true
    else if (L.has(cp)) leftToRight = true
    if (first) firstIsRandAL = isRandAL
    first = false
    lastIsRandAL = isRandAL
  }
  if (randAL) {
    if (leftToRight) {
      throw new SASLprepError(
        'bidi',
        'SASLprep: mixed right-to-left and left-to-right text (RFC 3454 §6)',
      )
    }
    if (!firstIsRandAL || !lastIsRandAL) {
      throw new SASLprepError(
        'bidi',
        'SASLprep: right-to-left text must start and end right-to-left (RFC 3454 §6)',
      )
    }
  }
  return output
}
