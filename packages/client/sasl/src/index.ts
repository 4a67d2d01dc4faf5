export { type CryptoBackend, type HashName, pbkdf2, webCryptoBackend } from './crypto.js'
export { CredentialsError, SASLprepError } from './errors.js'
export type { Credentials, MechanismSession } from './mechanism.js'
export { createPlain, type PlainOptions } from './plain.js'
export {
  NS_SASL,
  SUPPORTED_MECHANISMS,
  type SASLApi,
  type SASLOptions,
  sasl,
} from './sasl.js'
export { saslprep } from './saslprep.js'
export { createScram, escapeSaslname, type ScramOptions } from './scram.js'
export {
  type MemoryScramCacheOptions,
  memoryScramCache,
  type ScramCache,
  type ScramCacheKey,
} from './scram-cache.js'
