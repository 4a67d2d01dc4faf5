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
  if (typeof value !== 'string') return undefined
  let start = 0
  let end = value.length
  while (start < end && isXmlSpace(value.charCodeAt(start))) start++
  while (end > start && isXmlSpace(value.charCodeAt(end - 1))) end--
  if (start < end && value.charCodeAt(start) === 0x2b /* + */) start++
  if (start === end) return undefined
  // Leading zeros do not count towards the length limit.
  while (end - start > 1 && value.charCodeAt(start) === 0x30) start++
  if (end - start > 10) return undefined
  let n = 0
  for (let i = start; i < end; i++) {
    const digit = value.charCodeAt(i) - 0x30
    if (digit < 0 || digit > 9) return undefined
    n = n * 10 + digit
  }
  return n < COUNTER_MODULUS ? n : undefined
}

function isXmlSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d
}
