import { timingSafeEqual } from './crypto.js'

/**
 * What a SCRAM salted password was derived for. RFC 5802 §3: SaltedPassword :=
 * Hi(Normalize(password), salt, i); it stays valid while the server keeps the same salt and
 * iteration count for the account (§5.1 lets a client keep it for later logins).
 */
export interface ScramCacheKey {
  /** `SCRAM-SHA-1` or `SCRAM-SHA-256`. */
  readonly mechanism: string
  /** The username, SASLprepped. */
  readonly username: string
  /** The salt, base64, as the server sent it. */
  readonly salt: string
  readonly iterations: number
}

/**
 * Where SCRAM keeps salted passwords between logins, so that a login with the same salt and
 * iteration count skips PBKDF2. A salted password is a secret: whoever has it can log in as
 * the user (it gives the ClientKey), so a cache must be kept like the password itself.
 *
 * `password` is the SASLprepped password of the login asking: an entry must only be given back
 * for the password it was derived from (a wrong password must still fail).
 */
export interface ScramCache {
  /** The salted password kept for `key` and `password`, or undefined. */
  get(
    key: ScramCacheKey,
    password: string,
  ): Uint8Array | undefined | Promise<Uint8Array | undefined>
  /** A salted password the server accepted: the login that used it succeeded. */
  set(key: ScramCacheKey, password: string, saltedPassword: Uint8Array): void | Promise<void>
  /** A login with the entry of `key` failed: forget it (the password or the salt changed). */
  delete(key: ScramCacheKey): void | Promise<void>
}

export interface MemoryScramCacheOptions {
  /** Entries kept (the oldest goes first). Default 16. */
  maxEntries?: number | undefined
}

const encoder = new TextEncoder()

function slot(key: ScramCacheKey): string {
  return `${key.mechanism}\u0000${key.iterations}\u0000${key.salt}\u0000${key.username}`
}

/**
 * A ScramCache in this process's memory: repeated logins of the same account (reconnections,
 * several connections) derive the salted password once. Each entry holds the salted password
 * and the password it was derived from (compared in constant time), both as bytes in a closure:
 * nothing of them is enumerable, printable or serialisable through the returned object.
 */
export function memoryScramCache(options: MemoryScramCacheOptions = {}): ScramCache {
  const max = options.maxEntries ?? 16
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new TypeError('memoryScramCache: `maxEntries` must be a positive integer')
  }
  const entries = new Map<string, { password: Uint8Array; saltedPassword: Uint8Array }>()
  return {
    get(key, password) {
      const entry = entries.get(slot(key))
      if (entry === undefined || !timingSafeEqual(entry.password, encoder.encode(password))) {
        return undefined
      }
      return entry.saltedPassword.slice()
    },
    set(key, password, saltedPassword) {
      const k = slot(key)
      entries.delete(k)
      entries.set(k, { password: encoder.encode(password), saltedPassword: saltedPassword.slice() })
      while (entries.size > max) entries.delete(entries.keys().next().value as string)
    },
    delete(key) {
      entries.delete(slot(key))
    },
  }
}
