import { type CryptoBackend, type HashName, type Subtle, webCryptoBackend } from './crypto.js'

type NodeCrypto = typeof import('node:crypto')

const NODE_NAMES: Readonly<Record<HashName, string>> = { 'SHA-1': 'sha1', 'SHA-256': 'sha256' }

/** The backend over node:crypto's native, asynchronous PBKDF2 (off the event loop). */
export function nodeBackend(crypto: NodeCrypto): CryptoBackend {
  return {
    name: 'node',
    pbkdf2: (hash, password, salt, iterations, bytes) =>
      new Promise((resolve, reject) => {
        crypto.pbkdf2(password, salt, iterations, bytes, NODE_NAMES[hash], (error, key) => {
          if (error) reject(error)
          else resolve(new Uint8Array(key.buffer, key.byteOffset, key.byteLength))
        })
      }),
    hmac: async (hash, key, data) =>
      new Uint8Array(crypto.createHmac(NODE_NAMES[hash], key).update(data).digest()),
    digest: async (hash, data) =>
      new Uint8Array(crypto.createHash(NODE_NAMES[hash]).update(data).digest()),
  }
}

let selected: Promise<CryptoBackend> | undefined

/**
 * The default backend: node:crypto, imported on first use so that this package still loads
 * where it does not exist (browsers); WebCrypto there.
 */
export function defaultBackend(): Promise<CryptoBackend> {
  selected ??= selectBackend().catch((error: unknown) => {
    selected = undefined
    throw error
  })
  return selected
}

/**
 * node:crypto when `load` finds it, WebCrypto otherwise. Exported for tests, which load a
 * runtime without node:crypto.
 */
export async function selectBackend(
  runtime: { load?: () => Promise<NodeCrypto | undefined>; subtle?: Subtle | undefined } = {},
): Promise<CryptoBackend> {
  const node = await (runtime.load ?? importNodeCrypto)()
  const subtle = 'subtle' in runtime ? runtime.subtle : globalThis.crypto?.subtle
  if (node) return nodeBackend(node)
  if (!subtle) {
    throw new Error('SCRAM needs node:crypto or WebCrypto (crypto.subtle); neither is available')
  }
  return webCryptoBackend(subtle)
}

async function importNodeCrypto(): Promise<NodeCrypto | undefined> {
  // A specifier bundlers do not follow: browser builds must not try to bundle node:crypto.
  const specifier = 'node:crypto'
  try {
    return (await import(/* @vite-ignore */ /* webpackIgnore: true */ specifier)) as NodeCrypto
  } catch {
    // Not a Node-compatible runtime: WebCrypto is the fallback, not an error.
    return undefined
  }
}
