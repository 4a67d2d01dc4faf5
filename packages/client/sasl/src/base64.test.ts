import { describe, expect, test } from 'vitest'
import { fromBase64, toBase64 } from './base64.js'

describe('base64', () => {
  test('matches the RFC 4648 §10 vectors both ways', () => {
    const vectors: [string, string][] = [
      ['', ''],
      ['f', 'Zg=='],
      ['fo', 'Zm8='],
      ['foo', 'Zm9v'],
      ['foob', 'Zm9vYg=='],
      ['fooba', 'Zm9vYmE='],
      ['foobar', 'Zm9vYmFy'],
    ]
    const enc = new TextEncoder()
    for (const [plain, encoded] of vectors) {
      expect(toBase64(enc.encode(plain))).toBe(encoded)
      expect(fromBase64(encoded)).toEqual(enc.encode(plain))
    }
  })

  test('round-trips every byte value and length', () => {
    for (let n = 0; n < 40; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 97 + n * 31) & 0xff)
      const text = toBase64(bytes)
      expect(text).toBe(Buffer.from(bytes).toString('base64'))
      expect(fromBase64(text)).toEqual(bytes)
    }
  })

  test.each(['Zg', 'Zg=', 'Z===', 'Zm9v\n', 'Zm 9v', 'Zh==', 'Zm9=', 'Zm-_', '====', 'Zg==Zg=='])(
    'rejects %j',
    (text) => {
      expect(fromBase64(text)).toBeUndefined()
    },
  )

  test('a padded last group is accepted exactly when it is canonical (no stray bits)', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
    for (const a of alphabet) {
      for (const b of alphabet) {
        for (const text of [`${a}${b}==`, `Z${a}${b}=`]) {
          const canonical = Buffer.from(text, 'base64').toString('base64') === text
          const decoded = fromBase64(text)
          expect(decoded !== undefined).toBe(canonical)
          if (decoded) expect(Buffer.from(decoded).toString('base64')).toBe(text)
        }
      }
    }
  })
})
