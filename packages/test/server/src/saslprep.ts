/*
 * A reduced SASLprep (RFC 4013) for the test server's passwords and user names: the two
 * mappings of RFC 4013 §2.1 and §2.2 (NFKC). The prohibited-output and bidi checks of §2.3 and
 * §2.4 are left out: a test server only needs to agree with correct clients on valid input.
 */

// RFC 3454 table C.1.2: non-ASCII space characters, mapped to U+0020 (RFC 4013 §2.1).
const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/g
// RFC 3454 table B.1: characters commonly mapped to nothing (RFC 4013 §2.1).
const MAPPED_TO_NOTHING =
  /\u00ad|\u034f|\u1806|[\u180b-\u180d]|\u200c|\u200d|\u2060|[\ufe00-\ufe0f]|\ufeff/g
const PRINTABLE_ASCII = /^[\u0020-\u007e]*$/

export function saslprep(s: string): string {
  if (PRINTABLE_ASCII.test(s)) return s
  return s.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '').normalize('NFKC')
}
