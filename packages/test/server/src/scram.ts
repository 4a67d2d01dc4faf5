import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto'
import { saslprep } from './saslprep.js'

/*
 * The server side of SCRAM (RFC 5802 §5, §7; SHA-256 from RFC 7677). Only the data the RFC asks
 * a server to keep is stored: salt, iteration count, StoredKey and ServerKey (§3).
 */

export type ScramHash = 'sha1' | 'sha256' | 'sha512'

/** SASL mechanism name to hash; the -PLUS (channel binding) variants are not implemented. */
export const SCRAM_MECHANISMS: Readonly<Record<string, ScramHash>> = {
  'SCRAM-SHA-1': 'sha1',
  'SCRAM-SHA-256': 'sha256',
  'SCRAM-SHA-512': 'sha512',
}

export interface ScramCredentials {
  readonly hash: ScramHash
  readonly salt: Buffer
  readonly iterations: number
  readonly storedKey: Buffer
  readonly serverKey: Buffer
}

const HASH_LENGTH: Record<ScramHash, number> = { sha1: 20, sha256: 32, sha512: 64 }

function hmac(hash: ScramHash, key: Buffer, data: string): Buffer {
  return createHmac(hash, key).update(data, 'utf8').digest()
}

/** RFC 5802 §3: SaltedPassword = Hi(Normalize(password), salt, i), then the two keys. */
export function deriveScramCredentials(
  password: string,
  hash: ScramHash,
  iterations: number,
  salt: Buffer = randomBytes(16),
): ScramCredentials {
  const salted = pbkdf2Sync(
    Buffer.from(saslprep(password), 'utf8'),
    salt,
    iterations,
    HASH_LENGTH[hash],
    hash,
  )
  const clientKey = hmac(hash, salted, 'Client Key')
  return {
    hash,
    salt,
    iterations,
    storedKey: createHash(hash).update(clientKey).digest(),
    serverKey: hmac(hash, salted, 'Server Key'),
  }
}

/** What the exchange asks the server to send next. */
export type ScramResult =
  | { readonly kind: 'challenge'; readonly data: string }
  | {
      readonly kind: 'success'
      readonly username: string
      /** The server-final-message, `v=` and the base64 ServerSignature. */
      readonly data: string
      readonly serverSignature: Buffer
    }
  | { readonly kind: 'failure'; readonly condition: ScramFailureCondition; readonly text: string }

export type ScramFailureCondition = 'malformed-request' | 'not-authorized' | 'invalid-authzid'

export interface ScramExchangeOptions {
  /** Finds the credentials of a (SASLprep'd) user name; undefined for an unknown user. */
  lookup(username: string): ScramCredentials | undefined
  /** Checks the authorization identity (`a=`), when the client sent one. */
  authzid?(authzid: string, username: string): boolean
  /** Fixed server nonce part, for test vectors; random (24 base64 characters) by default. */
  serverNonce?: string
  /** Iteration count announced for unknown users (so they look like known ones). */
  iterations: number
}

const PRINTABLE_NONCE = /^[\u0021-\u002b\u002d-\u007e]+$/ // printable ASCII except ','
const ATTR_VAL = /^[A-Za-z]=/
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

function fail(condition: ScramFailureCondition, text: string): ScramResult {
  return { kind: 'failure', condition, text }
}

/** RFC 5802 §5.1: in a saslname, ',' is sent as '=2C' and '=' as '=3D'; any other '=' is an error. */
function decodeSaslname(s: string): string | undefined {
  if (s.length === 0) return undefined
  let out = ''
  for (let i = 0; i < s.length; i++) {
    const c = s[i]
    if (c === ',') return undefined
    if (c === '=') {
      const code = s.slice(i + 1, i + 3)
      if (code === '2C') out += ','
      else if (code === '3D') out += '='
      else return undefined
      i += 2
    } else out += c
  }
  return out
}

/**
 * One SCRAM authentication, server side: feed the client-first-message to `first()`, send the
 * challenge it returns, feed the client-final-message to `final()`.
 */
export class ScramServerExchange {
  readonly #hash: ScramHash
  readonly #options: ScramExchangeOptions
  #gs2Header = ''
  #clientFirstBare = ''
  #serverFirst = ''
  #nonce = ''
  #username = ''
  #credentials: ScramCredentials | undefined
  #known = false
  #state: 'first' | 'final' | 'done' = 'first'

  constructor(hash: ScramHash, options: ScramExchangeOptions) {
    this.#hash = hash
    this.#options = options
  }

  /** The user name the client gave (after SASLprep), once `first()` parsed it. */
  get username(): string {
    return this.#username
  }

  /** RFC 5802 §7 client-first-message -> server-first-message. */
  first(message: string): ScramResult {
    if (this.#state !== 'first') return fail('malformed-request', 'unexpected message')
    this.#state = 'done'
    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    const c1 = message.indexOf(',')
    const c2 = c1 === -1 ? -1 : message.indexOf(',', c1 + 1)
    if (c2 === -1) return fail('malformed-request', 'no GS2 header')
    const flag = message.slice(0, c1)
    // 'p=' asks for channel binding, which no mechanism offered here has (-PLUS is not offered).
    // 'y' means the client could bind but thinks we cannot: true here, so it is accepted (§6).
    if (flag.startsWith('p=')) return fail('not-authorized', 'channel binding is not supported')
    if (flag !== 'n' && flag !== 'y') return fail('malformed-request', 'bad channel binding flag')
    const authzField = message.slice(c1 + 1, c2)
    let authzid: string | undefined
    if (authzField !== '') {
      if (!authzField.startsWith('a=')) return fail('malformed-request', 'bad authzid')
      authzid = decodeSaslname(authzField.slice(2))
      if (authzid === undefined) return fail('malformed-request', 'bad authzid')
    }
    this.#gs2Header = message.slice(0, c2 + 1)
    this.#clientFirstBare = message.slice(c2 + 1)
    const fields = this.#clientFirstBare.split(',')
    // §5.1 'm': reserved for mandatory extensions; a server that does not know them must fail.
    if (fields[0]?.startsWith('m=')) return fail('malformed-request', 'unsupported extension')
    const [n, r] = fields
    if (n === undefined || !n.startsWith('n=') || r === undefined || !r.startsWith('r=')) {
      return fail('malformed-request', 'bad client-first-message')
    }
    // Optional extensions follow, each attr-val = ALPHA "=" value.
    if (!fields.slice(2).every((f) => ATTR_VAL.test(f))) {
      return fail('malformed-request', 'bad extension')
    }
    const name = decodeSaslname(n.slice(2))
    if (name === undefined) return fail('malformed-request', 'bad user name')
    const clientNonce = r.slice(2)
    if (!PRINTABLE_NONCE.test(clientNonce)) return fail('malformed-request', 'bad nonce')
    this.#username = saslprep(name)
    if (authzid !== undefined && !(this.#options.authzid?.(authzid, this.#username) ?? false)) {
      return fail('invalid-authzid', 'authorization identity refused')
    }
    const creds = this.#options.lookup(this.#username)
    this.#known = creds !== undefined
    // An unknown user gets a made-up salt and fails only at the end, like a wrong password.
    this.#credentials = creds ?? {
      hash: this.#hash,
      salt: randomBytes(16),
      iterations: this.#options.iterations,
      storedKey: randomBytes(HASH_LENGTH[this.#hash]),
      serverKey: randomBytes(HASH_LENGTH[this.#hash]),
    }
    this.#nonce = clientNonce + (this.#options.serverNonce ?? randomBytes(18).toString('base64'))
    const { salt, iterations } = this.#credentials
    this.#serverFirst = `r=${this.#nonce},s=${salt.toString('base64')},i=${iterations}`
    this.#state = 'final'
    return { kind: 'challenge', data: this.#serverFirst }
  }

  /** RFC 5802 §7 client-final-message -> server-final-message (or a failure). */
  final(message: string): ScramResult {
    if (this.#state !== 'final') return fail('malformed-request', 'unexpected message')
    this.#state = 'done'
    const creds = this.#credentials!
    const p = message.lastIndexOf(',p=')
    if (p === -1) return fail('malformed-request', 'no proof')
    const withoutProof = message.slice(0, p)
    const proofB64 = message.slice(p + 3)
    const fields = withoutProof.split(',')
    const [c, r] = fields
    if (c === undefined || !c.startsWith('c=') || r === undefined || !r.startsWith('r=')) {
      return fail('malformed-request', 'bad client-final-message')
    }
    if (!fields.slice(2).every((f) => ATTR_VAL.test(f))) {
      return fail('malformed-request', 'bad extension')
    }
    const cb = c.slice(2)
    if (!BASE64.test(cb) || !BASE64.test(proofB64)) {
      return fail('malformed-request', 'bad base64')
    }
    // §5.1 'c': without channel binding it is the base64 of the gs2-header sent in the first message.
    if (Buffer.from(cb, 'base64').toString('utf8') !== this.#gs2Header) {
      return fail('not-authorized', 'channel binding data mismatch')
    }
    if (r.slice(2) !== this.#nonce) return fail('not-authorized', 'nonce mismatch')
    const proof = Buffer.from(proofB64, 'base64')
    if (proof.length !== HASH_LENGTH[this.#hash]) return fail('malformed-request', 'bad proof')
    // §3: AuthMessage, ClientSignature, then ClientKey = ClientProof XOR ClientSignature and
    // the check H(ClientKey) == StoredKey.
    const authMessage = `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`
    const clientSignature = createHmac(this.#hash, creds.storedKey).update(authMessage).digest()
    const clientKey = Buffer.alloc(proof.length)
    for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i]! ^ clientSignature[i]!
    const storedKey = createHash(this.#hash).update(clientKey).digest()
    if (!timingSafeEqual(storedKey, creds.storedKey) || !this.#known) {
      return fail('not-authorized', 'authentication failed')
    }
    const serverSignature = createHmac(this.#hash, creds.serverKey).update(authMessage).digest()
    return {
      kind: 'success',
      username: this.#username,
      data: `v=${serverSignature.toString('base64')}`,
      serverSignature,
    }
  }
}

/** Strict base64 (RFC 4648 §4, padding required) as RFC 6120 §6.4.2 asks for SASL data. */
export function isBase64(s: string): boolean {
  return BASE64.test(s)
}
