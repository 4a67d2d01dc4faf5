import { type CryptoBackend, webCryptoBackend } from './crypto.js'

/** Browsers (and other runtimes bundled with the `browser` condition): WebCrypto. */
export async function defaultBackend(): Promise<CryptoBackend> {
  const subtle = globalThis.crypto?.subtle
  if (!subtle) throw new Error('SCRAM needs WebCrypto (crypto.subtle), which this runtime lacks')
  return webCryptoBackend(subtle)
}
