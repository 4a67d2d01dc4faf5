import { inspect } from 'node:util'
import * as nodeCrypto from 'node:crypto'
import { SASLError } from '@core/errors'
import { describe, expect, test } from 'vitest'
import type { CryptoBackend } from './crypto.js'
import { nodeBackend } from './crypto-backend-node.js'
import { createScram } from './scram.js'
import { memoryScramCache, type ScramCache } from './scram-cache.js'

const enc = new TextEncoder()
const dec = new TextDecoder()

// RFC 5802 §5 (SCRAM-SHA-1): user, pencil, salt QSXCR+Q6sek8bf92, 4096 iterations.
const NONCE = 'fyko+d2lbbFgONRv9qkxdawL'
const SERVER_FIRST = 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096'
const FINAL = 'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts='
const SERVER_FINAL = 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ='
const KEY = {
  mechanism: 'SCRAM-SHA-1',
  username: 'user',
  salt: 'QSXCR+Q6sek8bf92',
  iterations: 4096,
}

/** node:crypto, counting the PBKDF2 runs. */
function counting(): CryptoBackend & { runs: number } {
  const inner = nodeBackend(nodeCrypto)
  const backend = {
    ...inner,
    runs: 0,
    pbkdf2: (...args: Parameters<CryptoBackend['pbkdf2']>) => {
      backend.runs++
      return inner.pbkdf2(...args)
    },
  }
  return backend
}

/** One SHA-1 login with the RFC's messages: what we sent as client-final, and the outcome. */
async function login(
  cache: ScramCache,
  backend: CryptoBackend,
  { password = 'pencil', serverFirst = SERVER_FIRST, serverFinal = SERVER_FINAL } = {},
) {
  const scram = createScram('SHA-1', {
    username: 'user',
    password,
    nonce: NONCE,
    minIterations: 4096,
    maxIterations: 600_000,
    crypto: backend,
    cache,
  })
  await scram.start()
  const final = dec.decode(await scram.challenge(enc.encode(serverFirst)))
  const outcome = await scram.success(enc.encode(serverFinal)).then(
    () => 'ok',
    (e: unknown) => e,
  )
  return { final, outcome, scram }
}

describe('SCRAM with a cache of salted passwords (RFC 5802 §5.1)', () => {
  test('a second login with the same salt and iteration count skips PBKDF2 and sends the same proof', async () => {
    const cache = memoryScramCache()
    const backend = counting()
    const first = await login(cache, backend)
    expect(first).toMatchObject({ final: FINAL, outcome: 'ok' })
    expect(backend.runs).toBe(1)
    const second = await login(cache, backend)
    expect(second).toMatchObject({ final: FINAL, outcome: 'ok' })
    expect(backend.runs).toBe(1)
  })

  test('another password, salt or iteration count is not answered from the cache', async () => {
    const cache = memoryScramCache()
    const backend = counting()
    await login(cache, backend)
    // A wrong password must still fail: its proof is not the RFC's.
    const wrong = await login(cache, backend, { password: 'pencil2' })
    expect(wrong.final).not.toBe(FINAL)
    expect(wrong.outcome).toBeInstanceOf(SASLError)
    expect(backend.runs).toBe(2)
    await login(cache, backend, { serverFirst: SERVER_FIRST.replace('i=4096', 'i=4097') })
    await login(cache, backend, { serverFirst: SERVER_FIRST.replace('QSXCR', 'QSXCS') })
    expect(backend.runs).toBe(4)
  })

  test('kept only once the server proved it knows the password', async () => {
    const cache = memoryScramCache()
    const failed = await login(cache, counting(), { serverFinal: 'v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=' })
    expect(failed.outcome).toMatchObject({ condition: 'invalid-server-signature' })
    expect(await cache.get(KEY, 'pencil')).toBeUndefined()
  })

  test('forgotten when a login that used it fails (server error, bad signature or <failure/>)', async () => {
    for (const end of ['e=invalid-proof', 'v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=', 'failure']) {
      const cache = memoryScramCache()
      await login(cache, counting())
      expect(await cache.get(KEY, 'pencil')).toBeInstanceOf(Uint8Array)
      if (end === 'failure') {
        const { scram } = await login(cache, counting())
        await scram.failed?.()
      } else {
        const again = await login(cache, counting(), { serverFinal: end })
        expect(again.outcome).toBeInstanceOf(SASLError)
      }
      expect(await cache.get(KEY, 'pencil')).toBeUndefined()
    }
  })

  test('the memory cache shows no secret, and keeps at most maxEntries', async () => {
    const cache = memoryScramCache({ maxEntries: 2 })
    await login(cache, counting())
    const salted = (await cache.get(KEY, 'pencil')) as Uint8Array
    expect(salted).toHaveLength(20)
    const shown = `${inspect(cache, { depth: 10, showHidden: true })}${JSON.stringify(cache)}`
    expect(shown).not.toContain('pencil')
    expect(shown).not.toContain(Buffer.from(salted).toString('base64'))
    // What get() returns is a copy: changing it does not change the entry.
    salted.fill(0)
    expect((await cache.get(KEY, 'pencil'))?.[0]).not.toBe(0)
    await cache.set({ ...KEY, salt: 'b' }, 'pencil', new Uint8Array(20))
    await cache.set({ ...KEY, salt: 'c' }, 'pencil', new Uint8Array(20))
    expect(await cache.get(KEY, 'pencil')).toBeUndefined()
    expect(await cache.get({ ...KEY, salt: 'c' }, 'pencil')).toBeInstanceOf(Uint8Array)
    expect(() => memoryScramCache({ maxEntries: 0 })).toThrow(TypeError)
  })
})
