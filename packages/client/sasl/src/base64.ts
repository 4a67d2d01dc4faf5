/**
 * Strict base64 (RFC 4648 §4): the standard alphabet, padding required, no whitespace, and
 * no non-zero bits left over in the last character (§3.5): its unused low bits are zero, so
 * before '==' it is one of A Q g w, before '=' one of A E I M Q U Y c g k o s w 0 4 8.
 */
const STRICT =
  /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$/

/** Standard base64 with padding (RFC 4648 §4), as SASL in XMPP uses it (RFC 6120 §6.4.2). */
export function toBase64(bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary)
}

/** Strict base64 decoding (see STRICT); undefined for anything else. */
export function fromBase64(text: string): Uint8Array | undefined {
  if (!STRICT.test(text)) return undefined
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0))
}
