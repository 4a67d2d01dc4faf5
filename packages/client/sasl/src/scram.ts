import { SASLError } from '@core/errors'
import { fromBase64, toBase64 } from './base64.js'
import { defaultBackend } from '#crypto-backend'
import { type CryptoBackend, HASH_BYTES, type HashName, timingSafeEqual } from './crypto.js'
import type { Credentials, MechanismSession } from './mechanism.js'
import type { ScramCache, ScramCacheKey } from './scram-cache.js'
import { saslprep } from './saslprep.js'

export interface ScramOptions extends Credentials {
  /** Authorization identity (RFC 5802 §5.1 `a=`), when it differs from the username's. */
  authzid?: string | undefined
  /** The client nonce: printable ASCII without ','. */
  nonce: string
  /** Iteration counts the server may ask for; anything outside is refused. */
  minIterations: number
  maxIterations: number
  /** Default: node:crypto, WebCrypto where node:crypto is missing. */
  crypto?: CryptoBackend | undefined
  /**
   * Salted passwords kept between logins (RFC 5802 §5.1): a login whose salt and iteration
   * count match a kept entry skips PBKDF2. Entries are stored once the server proved it
   * knows the password, and forgotten when a login that used one fails.
   */
  cache?: ScramCache | undefined
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** RFC 5802 §5.1 `printable`: %x21-2B / %x2D-7E (no ','). */
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/

/** RFC 5802 §5.1: a saslname has '=' and ',' escaped as =3D and =2C. */
export function escapeSaslname(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C')
}

/** The mechanism name for a hash: SCRAM-SHA-1 or SCRAM-SHA-256. */
export function scramName(hash: HashName): string {
  return `SCRAM-${hash}`
}

function invalid(message: string): SASLError {
  return new SASLError('invalid-server-message', { message: `SCRAM: ${message}` })
}

/** RFC 5802 §7: the defined server-error-value names. */
const SERVER_ERRORS: ReadonlySet<string> = new Set(
  'invalid-encoding extensions-not-supported invalid-proof channel-bindings-dont-match server-does-support-channel-binding channel-binding-not-supported unsupported-channel-binding-type unknown-user invalid-username-encoding no-resources other-error'.split(
    ' ',
  ),
)

function serverError(value: string): never {
  const condition = SERVER_ERRORS.has(value) ? value : 'other-error'
  throw new SASLError(condition, {
    text: value,
    message: `SCRAM: the server reported an error: ${condition}${condition === value ? '' : ` (${JSON.stringify(value.slice(0, 200))})`}`,
  })
}

function badSignature(message: string): SASLError {
  return new SASLError('invalid-server-signature', { message: `SCRAM: ${message}` })
}

/**
 * Splits a SCRAM message into its attributes (RFC 5802 §7): `a=value` pairs in order. Only
 * single-letter names; values keep any '=' they contain.
 */
function attributes(message: string): [string, string][] {
  const out: [string, string][] = []
  for (const part of message.split(',')) {
    if (!/^[A-Za-z]=/.test(part)) throw invalid('malformed server message')
    out.push([part.charAt(0), part.slice(2)])
  }
  return out
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number)
  return out
}

type State = 'initial' | 'first-sent' | 'final-sent' | 'verified'

/**
 * The client side of SCRAM (RFC 5802; SHA-256: RFC 7677) without channel binding (gs2
 * header `n`). The server must prove it knows the password too: a success without a
 * matching `v=` fails with SASLError `invalid-server-signature`.
 */
export function createScram(hash: HashName, options: ScramOptions): MechanismSession {
  if (!PRINTABLE.test(options.nonce)) {
    throw new TypeError('SCRAM: the client nonce must be printable ASCII without ","')
  }
  // RFC 5802 §5.1: the username is SASLprepped; an empty result aborts the exchange.
  const username = saslprep(options.username)
  if (username === '') {
    throw new SASLError('invalid-username', { message: 'SCRAM: the username is empty' })
  }
  // RFC 5802 §2.2 Normalize(): the password is SASLprepped as well.
  const passwordText = saslprep(options.password)
  const password = encoder.encode(passwordText)
  const gs2Header =
    options.authzid === undefined ? 'n,,' : `n,a=${escapeSaslname(options.authzid)},`
  const clientFirstBare = `n=${escapeSaslname(username)},r=${options.nonce}`
  let state: State = 'initial'
  let serverSignature: Uint8Array | undefined
  // With a cache: what this login's salted password was derived for, the salted password, and
  // whether it came from the cache.
  let cacheKey: ScramCacheKey | undefined
  let salted: Uint8Array | undefined
  let fromCache = false

  const crypto = async () => options.crypto ?? (await defaultBackend())

  async function clientFinal(serverFirst: string): Promise<string> {
    const attrs = attributes(serverFirst)
    // RFC 5802 §5.1 `m`: a mandatory extension we do not know; we must fail.
    if (attrs[0]?.[0] === 'm') throw invalid('unsupported mandatory extension (m=)')
    const [r, s, i] = attrs
    if (r?.[0] !== 'r' || s?.[0] !== 's' || i?.[0] !== 'i') {
      throw invalid('server-first-message without r=, s=, i=')
    }
    const nonce = r[1]
    // RFC 5802 §5.1: the server appends its part to our nonce.
    if (!nonce.startsWith(options.nonce) || nonce.length <= options.nonce.length) {
      throw invalid('the server nonce does not extend ours')
    }
    if (!PRINTABLE.test(nonce)) throw invalid('bad server nonce')
    const salt = fromBase64(s[1])
    if (!salt || salt.length === 0) throw invalid('bad salt')
    if (!/^[1-9][0-9]{0,9}$/.test(i[1])) throw invalid('bad iteration count')
    const iterations = Number(i[1])
    if (iterations < options.minIterations || iterations > options.maxIterations) {
      throw invalid(
        `${iterations} iterations: ${iterations < options.minIterations ? `fewer than the minimum (${options.minIterations})` : `more than the maximum (${options.maxIterations})`}`,
      )
    }

    // RFC 5802 §3: SaltedPassword, ClientKey, StoredKey, AuthMessage, proofs.
    const backend = await crypto()
    let saltedPassword: Uint8Array | undefined
    const cache = options.cache
    if (cache !== undefined) {
      cacheKey = { mechanism: scramName(hash), username, salt: s[1], iterations }
      const kept = await cache.get(cacheKey, passwordText)
      if (kept instanceof Uint8Array && kept.length === HASH_BYTES[hash]) {
        saltedPassword = kept
        fromCache = true
      }
    }
    saltedPassword ??= await backend.pbkdf2(hash, password, salt, iterations, HASH_BYTES[hash])
    salted = saltedPassword
    const clientKey = await backend.hmac(hash, saltedPassword, encoder.encode('Client Key'))
    const storedKey = await backend.digest(hash, clientKey)
    const withoutProof = `c=${toBase64(encoder.encode(gs2Header))},r=${nonce}`
    const authMessage = encoder.encode(`${clientFirstBare},${serverFirst},${withoutProof}`)
    const clientSignature = await backend.hmac(hash, storedKey, authMessage)
    const serverKey = await backend.hmac(hash, saltedPassword, encoder.encode('Server Key'))
    serverSignature = await backend.hmac(hash, serverKey, authMessage)
    return `${withoutProof},p=${toBase64(xor(clientKey, clientSignature))}`
  }

  function verify(serverFinal: string): void {
    const attrs = attributes(serverFinal)
    const [first] = attrs
    // RFC 5802 §7 server-error: the server refused us, and says why. Only the values §7
    // defines become the condition; any other (server-error-value-ext) is other-error, with
    // the server's value kept as text.
    if (first?.[0] === 'e') serverError(first[1])
    if (first?.[0] !== 'v') throw badSignature('no server signature (v=)')
    const received = fromBase64(first[1])
    const expected = serverSignature as Uint8Array
    if (!received || !timingSafeEqual(received, expected)) {
      throw badSignature('wrong server signature: the server does not know the password')
    }
    state = 'verified'
  }

  /** Checks the server-final-message; keeps or forgets the salted password accordingly. */
  async function finish(serverFinal: string): Promise<void> {
    try {
      verify(serverFinal)
    } catch (error) {
      await forget()
      throw error
    }
    const cache = options.cache
    if (cache !== undefined && cacheKey !== undefined && salted !== undefined && !fromCache) {
      await cache.set(cacheKey, passwordText, salted)
    }
  }

  /** A login that used a kept salted password failed: the cache must not offer it again. */
  async function forget(): Promise<void> {
    if (fromCache && cacheKey !== undefined) {
      fromCache = false
      await options.cache?.delete(cacheKey)
    }
  }

  function text(data: Uint8Array, what: string): string {
    try {
      return decoder.decode(data)
    } catch {
      throw invalid(`the ${what} is not valid UTF-8`)
    }
  }

  return {
    name: scramName(hash),
    start() {
      if (state !== 'initial') throw new Error('SCRAM: start() called twice')
      state = 'first-sent'
      return encoder.encode(gs2Header + clientFirstBare)
    },
    async challenge(data) {
      if (state === 'first-sent') {
        const final = await clientFinal(text(data, 'server-first-message'))
        state = 'final-sent'
        return encoder.encode(final)
      }
      if (state === 'final-sent') {
        // Some servers send server-final in a challenge and an empty success after it.
        await finish(text(data, 'server-final-message'))
        return new Uint8Array(0)
      }
      throw invalid('unexpected challenge')
    },
    async success(data) {
      if (data !== undefined && data.length > 0) {
        if (state !== 'final-sent' && state !== 'verified') {
          throw badSignature('success before the exchange ended')
        }
        await finish(text(data, 'server-final-message'))
        return
      }
      // RFC 5802 §5: without v= the server never proved it knows the password.
      if (state !== 'verified') {
        throw badSignature('success without a server signature')
      }
    },
    failed: forget,
  }
}
