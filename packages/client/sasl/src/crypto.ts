import { defaultBackend } from '#crypto-backend'
/** The hash functions SCRAM is defined for here (RFC 5802, RFC 7677). */
export type HashName = 'SHA-1' | 'SHA-256'

/** Output length in bytes. */
export const HASH_BYTES: Readonly<Record<HashName, number>> = { 'SHA-1': 20, 'SHA-256': 32 }

/**
 * The primitives SCRAM needs. The default (`#crypto-backend`): node:crypto on Node, WebCrypto
 * in browser builds, which carry no node:crypto code at all.
 */
export interface CryptoBackend {
  readonly name: 'node' | 'webcrypto'
  /** PBKDF2-HMAC (RFC 8018 §5.2), in one native call. */
  pbkdf2(
    hash: HashName,
    password: Uint8Array,
    salt: Uint8Array,
    iterations: number,
    bytes: number,
  ): Promise<Uint8Array>
  hmac(hash: HashName, key: Uint8Array, data: Uint8Array): Promise<Uint8Array>
  digest(hash: HashName, data: Uint8Array): Promise<Uint8Array>
}

export type Subtle = (typeof globalThis.crypto)['subtle']

/** The backend over WebCrypto (browsers, workers, any runtime with `crypto.subtle`). */
export function webCryptoBackend(subtle: Subtle): CryptoBackend {
  return {
    name: 'webcrypto',
    async pbkdf2(hash, password, salt, iterations, bytes) {
      const key = await subtle.importKey('raw', password, 'PBKDF2', false, ['deriveBits'])
      const bits = await subtle.deriveBits(
        { name: 'PBKDF2', hash, salt, iterations },
        key,
        bytes * 8,
      )
      return new Uint8Array(bits)
    },
    async hmac(hash, key, data) {
      const k = await subtle.importKey('raw', key, { name: 'HMAC', hash }, false, ['sign'])
      return new Uint8Array(await subtle.sign('HMAC', k, data))
    },
    async digest(hash, data) {
      return new Uint8Array(await subtle.digest(hash, data))
    },
  }
}

/** PBKDF2-HMAC with the default backend; a string password is UTF-8 encoded first. */
export async function pbkdf2(
  hash: HashName,
  password: string | Uint8Array,
  salt: Uint8Array,
  iterations: number,
  bytes: number,
): Promise<Uint8Array> {
  const backend = await defaultBackend()
  const secret = typeof password === 'string' ? new TextEncoder().encode(password) : password
  return backend.pbkdf2(hash, secret, salt, iterations, bytes)
}

/** Equal byte strings, in time that depends only on their length (RFC 5802 §9 spirit). */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number)
  return diff === 0
}

/** 'n' random bytes from the platform's CSPRNG. */
export function randomBytes(n: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(n))
}
