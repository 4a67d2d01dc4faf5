import * as nodeTls from 'node:tls'
import {
  type ConnectionOptions,
  checkServerIdentity,
  createSecureContext,
  type PeerCertificate,
  type SecureContext,
} from 'node:tls'
import { TLSError } from './errors.js'
import { isIpLiteral } from './service.js'

/** PEM certificates: one (string or Buffer, possibly with several in it) or a list. */
export type PemCertificates = string | Buffer | (string | Buffer)[]

export interface TlsSettings {
  /**
   * Accept a server certificate that does not verify (untrusted, expired, another name).
   * Off by default; turning it on removes the protection TLS gives against an active
   * attacker. For tests and closed networks only.
   */
  insecure?: boolean
  /**
   * Trust only these CA certificates (PEM): Node's default roots are **not** used for this
   * connection (node:tls `ca`). For a private CA and nothing else.
   */
  ca?: PemCertificates
  /**
   * Trust these CA certificates (PEM) in addition to Node's default roots (with `ca`: in
   * addition to `ca`). Read once, when the first connection is made with these settings.
   */
  extraCa?: PemCertificates
}

const MIN_VERSION = 'TLSv1.2'

/** Secure contexts built for `extraCa`, by settings object: parsing ~150 roots takes ~40 ms. */
const contexts = new WeakMap<TlsSettings, SecureContext>()

/** ALPN protocol of a client stream over direct TLS (XEP-0368 §3). */
export const ALPN_CLIENT = 'xmpp-client'

/**
 * node:tls options for a connection whose reference identity is the XMPP domain
 * (RFC 6120 §13.7.2.1, RFC 6125): whatever host we reach (an SRV target, an address, a
 * redirect), the certificate must be valid for the domain. SNI carries the domain
 * (XEP-0368 §3), unless it is an IP literal, which SNI may not carry (RFC 6066 §3).
 */
export function tlsOptions(domain: string, settings: TlsSettings = {}): ConnectionOptions {
  const options: ConnectionOptions = {
    rejectUnauthorized: settings.insecure !== true,
    minVersion: MIN_VERSION,
    checkServerIdentity: (_host: string, cert: PeerCertificate) =>
      checkServerIdentity(domain, cert),
  }
  if (!isIpLiteral(domain)) options.servername = domain
  if (settings.extraCa !== undefined) options.secureContext = extendedContext(settings)
  else if (settings.ca !== undefined) options.ca = settings.ca
  return options
}

/** The CA certificates trusted with these settings, when `extraCa` extends them. */
export function trustedCertificates(settings: TlsSettings): (string | Buffer)[] {
  const base = settings.ca === undefined ? defaultRoots() : listOf(settings.ca)
  return [...base, ...listOf(settings.extraCa)]
}

function extendedContext(settings: TlsSettings): SecureContext {
  let context = contexts.get(settings)
  if (context === undefined) {
    context = createSecureContext({ ca: trustedCertificates(settings), minVersion: MIN_VERSION })
    contexts.set(settings, context)
  }
  return context
}

/**
 * Node's default roots: with `tls.getCACertificates('default')` (Node 22.15 and later) the
 * bundled ones plus NODE_EXTRA_CA_CERTS, else the bundled ones (`tls.rootCertificates`).
 */
function defaultRoots(): readonly string[] {
  const get = (nodeTls as { getCACertificates?: (type: string) => string[] }).getCACertificates
  return typeof get === 'function' ? get('default') : nodeTls.rootCertificates
}

function listOf(pem: PemCertificates | undefined): (string | Buffer)[] {
  if (pem === undefined) return []
  return Array.isArray(pem) ? pem : [pem]
}

/**
 * Certificate verification failures as Node reports them: its own name check, and the
 * OpenSSL X509 verify results it passes on by name.
 */
const CERTIFICATE_CODES = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
])

/** Turns what node:tls reported during a handshake into a TLSError. */
export function handshakeError(error: unknown, domain: string): TLSError {
  if (error instanceof TLSError) return error
  // node:tls gives an Error with a code, or (authorizationError) the code alone.
  const code = typeof error === 'string' ? error : (error as { code?: unknown } | null)?.code
  const reason = typeof code === 'string' ? code : undefined
  const detail = error instanceof Error ? error.message : String(error)
  if (reason !== undefined && CERTIFICATE_CODES.has(reason)) {
    return new TLSError(
      'certificate',
      `the server's TLS certificate did not verify for the expected name "${domain}": ${detail}`,
      { cause: error, reason },
    )
  }
  return new TLSError('tls-handshake', `TLS handshake with "${domain}" failed: ${detail}`, {
    cause: error,
    ...(reason === undefined ? {} : { reason }),
  })
}
