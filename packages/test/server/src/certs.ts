import { readFileSync } from 'node:fs'

/** PEM text of the bundled test-only keys and certificates (the package's certs/ folder). */
export interface TestCerts {
  /** The test CA: give it to clients as `ca` to trust `cert`. */
  readonly ca: string
  /** Server certificate signed by the test CA; SAN localhost, example.com, *.example.com, 127.0.0.1. */
  readonly cert: string
  readonly key: string
  /** A self-signed certificate for localhost, trusted by nobody: for "untrusted certificate" tests. */
  readonly selfSigned: { readonly cert: string; readonly key: string }
}

const cache = new Map<string, string>()

function read(name: string): string {
  let pem = cache.get(name)
  if (pem === undefined) {
    // src/certs.ts and dist/certs.js both sit one level below the package root.
    pem = readFileSync(new URL(`../certs/${name}`, import.meta.url), 'utf8')
    cache.set(name, pem)
  }
  return pem
}

/**
 * The bundled test certificates, read on first use. They are public and for tests only: never
 * use them to protect anything.
 */
export const testCerts: TestCerts = {
  get ca() {
    return read('ca.crt')
  },
  get cert() {
    return read('server.crt')
  },
  get key() {
    return read('server.key')
  },
  selfSigned: {
    get cert() {
      return read('selfsigned.crt')
    },
    get key() {
      return read('selfsigned.key')
    },
  },
}
