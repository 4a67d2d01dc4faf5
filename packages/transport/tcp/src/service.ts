import { isIP } from 'node:net'
import { TcpError } from './errors.js'

/** How TLS starts on a connection: STARTTLS (RFC 6120 §5) or direct TLS (XEP-0368). */
export type TlsMode = 'starttls' | 'direct'

export interface ServiceAddress {
  tls: TlsMode
  /** A host name or an IP literal (IPv6 without brackets). */
  host: string
  /** Set when the address names a port; otherwise SRV decides (RFC 6120 §3.2). */
  port?: number
}

const SERVICE = /^(xmpps?):\/\/(\[[0-9A-Fa-f:.]+\]|[^\s:/?#@[\]]+)(?::(\d{1,5}))?\/?$/

/**
 * Parses `xmpp://host[:port]` (STARTTLS) or `xmpps://host[:port]` (direct TLS, XEP-0368).
 * IPv6 literals go in brackets: `xmpp://[::1]:5222`.
 */
export function parseService(service: string): ServiceAddress {
  const match = SERVICE.exec(service.trim())
  if (!match) {
    throw new TcpError(
      'invalid-service',
      `invalid service "${service}": expected xmpp://host[:port] or xmpps://host[:port]`,
    )
  }
  const scheme = match[1] as string
  let host = match[2] as string
  if (host.startsWith('[')) {
    host = host.slice(1, -1)
    if (isIP(host) !== 6) {
      throw new TcpError('invalid-service', `invalid IPv6 address in service "${service}"`)
    }
  }
  const address: ServiceAddress = { tls: scheme === 'xmpps' ? 'direct' : 'starttls', host }
  if (match[3] !== undefined) {
    const port = Number(match[3])
    if (port < 1 || port > 65535) {
      throw new TcpError('invalid-service', `invalid port in service "${service}"`)
    }
    address.port = port
  }
  return address
}

/** True for an IPv4 or IPv6 literal (with or without brackets). */
export function isIpLiteral(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  return isIP(bare) !== 0
}
