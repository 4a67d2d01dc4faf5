import { SASLError } from '@core/errors'
import * as nodeCrypto from 'node:crypto'
import { describe, expect, test } from 'vitest'
import { defaultBackend, nodeBackend, selectBackend } from './crypto-backend-node.js'
import { type CryptoBackend, pbkdf2, webCryptoBackend } from './crypto.js'
import { createScram, escapeSaslname, type ScramOptions } from './scram.js'

const enc = new TextEncoder()
const dec = new TextDecoder()
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex')

const backends: [string, CryptoBackend][] = [
  ['node:crypto', nodeBackend(nodeCrypto)],
  ['WebCrypto', webCryptoBackend(globalThis.crypto.subtle)],
]

// RFC 5802 §5 (SCRAM-SHA-1) and RFC 7677 §3 (SCRAM-SHA-256).
const SHA1 = {
  nonce: 'fyko+d2lbbFgONRv9qkxdawL',
  first: 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL',
  serverFirst: 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096',
  final: 'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
  serverFinal: 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=',
}
const SHA256 = {
  nonce: 'rOprNGfwEbeRWgbNEkqO',
  first: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst:
    'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  final:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
}

const base = (nonce: string, extra: Partial<ScramOptions> = {}): ScramOptions => ({
  username: 'user',
  password: 'pencil',
  nonce,
  minIterations: 4096,
  maxIterations: 600_000,
  ...extra,
})

async function refusal(promise: Promise<unknown>): Promise<SASLError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (!(error instanceof SASLError)) throw new Error(`expected a SASLError, got ${error}`)
  return error
}

describe.each(backends)('SCRAM with %s', (_name, backend) => {
  test('RFC 5802 §5: SCRAM-SHA-1', async () => {
    const scram = createScram('SHA-1', base(SHA1.nonce, { crypto: backend }))
    expect(dec.decode(await scram.start())).toBe(SHA1.first)
    expect(dec.decode(await scram.challenge(enc.encode(SHA1.serverFirst)))).toBe(SHA1.final)
    await expect(scram.success(enc.encode(SHA1.serverFinal))).resolves.toBeUndefined()
  })

  test('RFC 7677 §3: SCRAM-SHA-256', async () => {
    const scram = createScram('SHA-256', base(SHA256.nonce, { crypto: backend }))
    expect(dec.decode(await scram.start())).toBe(SHA256.first)
    expect(dec.decode(await scram.challenge(enc.encode(SHA256.serverFirst)))).toBe(SHA256.final)
    await expect(scram.success(enc.encode(SHA256.serverFinal))).resolves.toBeUndefined()
  })

  test('RFC 6070: PBKDF2-HMAC-SHA1 vectors', async () => {
    const pw = enc.encode('password')
    const salt = enc.encode('salt')
    expect(hex(await backend.pbkdf2('SHA-1', pw, salt, 1, 20))).toBe(
      '0c60c80f961f0e71f3a9b524af6012062fe037a6',
    )
    expect(hex(await backend.pbkdf2('SHA-1', pw, salt, 4096, 20))).toBe(
      '4b007901b765489abead49d926f721d065a429c1',
    )
  })
})

describe('SCRAM exchange checks', () => {
  const challenged = async (serverFirst: string, extra: Partial<ScramOptions> = {}) => {
    const scram = createScram('SHA-1', base(SHA1.nonce, extra))
    await scram.start()
    return scram.challenge(enc.encode(serverFirst))
  }

  test('the default backend is node:crypto on Node, and pbkdf2() uses it', async () => {
    expect((await defaultBackend()).name).toBe('node')
    expect(hex(await pbkdf2('SHA-256', 'password', enc.encode('salt'), 1, 32))).toBe(
      '120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b',
    )
  })

  test('without node:crypto (a browser), WebCrypto is used; with neither, a clear error', async () => {
    const browser = await selectBackend({ load: async () => undefined })
    expect(browser.name).toBe('webcrypto')
    expect(
      hex(await browser.pbkdf2('SHA-1', enc.encode('password'), enc.encode('salt'), 2, 20)),
    ).toBe('ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957')
    await expect(selectBackend({ load: async () => undefined, subtle: undefined })).rejects.toThrow(
      'WebCrypto',
    )
  })

  test('a server nonce that does not extend ours is refused', async () => {
    const error = await refusal(challenged('r=somethingElse123,s=QSXCR+Q6sek8bf92,i=4096'))
    expect(error.condition).toBe('invalid-server-message')
    expect(error.message).toContain('nonce')
  })

  test('a server nonce equal to ours (nothing appended) is refused', async () => {
    const error = await refusal(challenged(`r=${SHA1.nonce},s=QSXCR+Q6sek8bf92,i=4096`))
    expect(error.message).toContain('nonce')
  })

  test('iteration counts outside [min, max] are refused', async () => {
    const r = 'r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92'
    expect((await refusal(challenged(`${r},i=4095`))).message).toContain('fewer than the minimum')
    expect((await refusal(challenged(`${r},i=600001`))).message).toContain('more than the maximum')
    expect((await refusal(challenged(`${r},i=5000`, { maxIterations: 4999 }))).message).toContain(
      'more than the maximum',
    )
    expect((await refusal(challenged(`${r},i=99999999999999999999`))).condition).toBe(
      'invalid-server-message',
    )
    expect((await refusal(challenged(`${r},i=-1`))).condition).toBe('invalid-server-message')
  })

  test('a mandatory extension, an empty salt, bad base64 and a wrong order are refused', async () => {
    const r = 'r=fyko+d2lbbFgONRv9qkxdawL3rfc'
    expect((await refusal(challenged(`m=x,${r},s=QSXCR+Q6sek8bf92,i=4096`))).message).toContain(
      'extension',
    )
    expect((await refusal(challenged(`${r},s=,i=4096`))).message).toContain('salt')
    expect((await refusal(challenged(`${r},s=!!!!,i=4096`))).message).toContain('salt')
    expect((await refusal(challenged(`s=QSXCR+Q6sek8bf92,${r},i=4096`))).condition).toBe(
      'invalid-server-message',
    )
    expect((await refusal(challenged('garbage'))).condition).toBe('invalid-server-message')
  })

  test('extensions after i= are ignored (RFC 5802 §7)', async () => {
    const final = await challenged(`${SHA1.serverFirst},x=future`)
    expect(dec.decode(final)).toMatch(/^c=biws,r=fyko\+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=/)
  })

  test('server-final: a wrong or missing signature, and e=, are refused', async () => {
    const run = async (serverFinal: string | undefined) => {
      const scram = createScram('SHA-1', base(SHA1.nonce))
      await scram.start()
      await scram.challenge(enc.encode(SHA1.serverFirst))
      return scram.success(serverFinal === undefined ? undefined : enc.encode(serverFinal))
    }
    const wrong = await refusal(run('v=AAAAAAAAAAAAAAAAAAAAAAAAAAA='))
    expect(wrong.condition).toBe('invalid-server-signature')
    expect(wrong.code).toBe('sasl-error')
    expect((await refusal(run(undefined))).condition).toBe('invalid-server-signature')
    expect((await refusal(run('x=1'))).condition).toBe('invalid-server-signature')
    expect((await refusal(run('v=@@@@'))).condition).toBe('invalid-server-signature')
    const e = await refusal(run('e=invalid-proof'))
    expect(e).toMatchObject({ condition: 'invalid-proof', text: 'invalid-proof' })
  })

  test('success before the exchange is complete is refused', async () => {
    const scram = createScram('SHA-1', base(SHA1.nonce))
    await scram.start()
    expect((await refusal(scram.success(undefined))).condition).toBe('invalid-server-signature')
    const again = createScram('SHA-1', base(SHA1.nonce))
    await again.start()
    expect((await refusal(again.success(enc.encode(SHA1.serverFinal)))).condition).toBe(
      'invalid-server-signature',
    )
  })

  test('a third challenge is refused', async () => {
    const scram = createScram('SHA-1', base(SHA1.nonce))
    await scram.start()
    await scram.challenge(enc.encode(SHA1.serverFirst))
    expect(await scram.challenge(enc.encode(SHA1.serverFinal))).toHaveLength(0)
    expect((await refusal(scram.challenge(enc.encode('r=x')))).condition).toBe(
      'invalid-server-message',
    )
  })

  test('the username is SASLprepped and escaped; authzid goes in the gs2 header', async () => {
    expect(escapeSaslname('a=b,c')).toBe('a=3Db=2Cc')
    const scram = createScram(
      'SHA-1',
      base('abc', { username: 'I\u00ADX=,y', authzid: 'boss@example.com' }),
    )
    expect(dec.decode(await scram.start())).toBe('n,a=boss@example.com,n=IX=3D=2Cy,r=abc')
    const final = dec.decode(
      await scram.challenge(enc.encode('r=abcdef,s=QSXCR+Q6sek8bf92,i=4096')),
    )
    // c= carries the gs2 header, base64.
    expect(
      final.startsWith(`c=${Buffer.from('n,a=boss@example.com,').toString('base64')},r=abcdef,p=`),
    ).toBe(true)
  })

  test('a nonce with a comma is refused up front', () => {
    expect(() => createScram('SHA-1', base('a,b'))).toThrow(TypeError)
  })
})
