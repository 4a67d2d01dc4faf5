/**
 * XEP-0198 §4: both counters are unsigned 32-bit integers that wrap from 2^32 - 1 to 0, so
 * every comparison between them is modular.
 */

/** 2^32: the counters' modulus. */
export const COUNTER_MODULUS = 0x1_0000_0000

/** The counter after `n` more (mod 2^32). */
export function advance(counter: number, n = 1): number {
  return (counter + n) >>> 0
}

/** How far `to` is ahead of `from`, mod 2^32: 0 .. 2^32 - 1. */
export function distance(from: number, to: number): number {
  return (to - from) >>> 0
}

/**
 * Reads `h` as a strict xs:unsignedInt (XML Schema Part 2 §3.3.22): decimal digits, an
 * optional leading `+`, leading zeros allowed, surrounding XML whitespace collapsed, value at
 * most 2^32 - 1. Anything else (empty, negative, a fraction, an exponent, hex, a value that
 * does not fit) is undefined: a protocol error for the caller to raise.
 */
export function parseUnsignedInt(value: unknown): number | undefined {
  // XML whitespace only (space, tab, LF, CR); ASCII digits only (no flag u: \d is [0-9]).
  const match = typeof value === 'string' ? /^[ \t\n\r]*\+?(\d+)[ \t\n\r]*$/.exec(value) : null
  if (!match) return undefined
  const n = Number(match[1])
  return n < COUNTER_MODULUS ? n : undefined
}
