import { bind } from '@client/bind'
import { type ScramCache, sasl } from '@client/sasl'
import {
  type AnyPlugin,
  type ApisOf,
  type Connection,
  type ConnectionTimeouts,
  createConnection,
} from '@core/connection'
import { iq } from '@core/iq'
import { JID } from '@core/jid'
import { packetLog } from '@core/packet-log'
import { router } from '@core/router'
import type { StreamParserOptions } from '@core/xml'
import { type PemCertificates, starttls, tcp } from '@transport/tcp'
import { ping } from '@xep/0199-ping'

export interface ClientOptions<T extends readonly AnyPlugin[] = readonly AnyPlugin[]> {
  /** `xmpp://host[:port]` (STARTTLS) or `xmpps://host[:port]` (direct TLS). Default: SRV lookup of the JID's domain. */
  service?: string
  /** Your address: `user@domain`, optionally with `/resource`. */
  jid: string
  password?: string
  /** Called at each login instead of keeping the password in the options. */
  credentials?: () =>
    | { username: string; password: string }
    | Promise<{ username: string; password: string }>
  /** Resource to bind (default: the JID's resource, else the server picks one). */
  resource?: string
  tls?: {
    /** Accept a certificate that does not verify. Off by default; never silently. */
    insecure?: boolean
    /** Trust only these CA certificates (PEM), in place of Node's default roots. */
    ca?: PemCertificates
    /** Trust these CA certificates (PEM) in addition to Node's default roots. */
    extraCa?: PemCertificates
  }
  /** Permit a stream without TLS and PLAIN without TLS. Off by default. */
  allowPlaintext?: boolean
  /**
   * Permit PLAIN over TLS whose certificate was not verified (`tls.insecure`): whoever is in
   * the middle gets the password. Off by default; implied by `allowPlaintext`.
   */
  allowPlainWithUnverifiedTLS?: boolean
  /** SASL mechanisms in order of preference (default SCRAM-SHA-256, SCRAM-SHA-1, PLAIN). */
  mechanisms?: string[]
  /**
   * SCRAM: where to keep salted passwords between logins (`memoryScramCache()` from
   * `@client/sasl`), so that reconnections skip PBKDF2. Its entries are secrets.
   */
  scramCache?: ScramCache
  /** The redacted packet log: true writes to standard error; a function gets each line. */
  debug?: boolean | ((line: string) => void)
  timeouts?: ConnectionTimeouts
  limits?: StreamParserOptions
  /** More plugins, registered after the preset's own. */
  plugins?: T
}

/**
 * A client assembled from the usual pieces: TCP with STARTTLS or direct TLS, SASL (SCRAM,
 * PLAIN), resource binding, IQ, routing, XEP-0199 ping and the packet log.
 */
export function createClient<const T extends readonly AnyPlugin[] = []>(options: ClientOptions<T>) {
  const address = JID.parse(options.jid)
  const allowPlaintext = options.allowPlaintext ?? false
  const resource = options.resource ?? (address.resource || undefined)
  const plugins = [
    // A with() variant only where an option differs from the plugin's default: each
    // variant lives as long as the connection (idle connections add up).
    allowPlaintext ? starttls.with({ allowPlaintext }) : starttls,
    sasl.with({
      ...(options.credentials
        ? { credentials: options.credentials }
        : { username: address.local, password: options.password ?? '' }),
      ...(options.mechanisms ? { mechanisms: options.mechanisms } : {}),
      ...(options.scramCache ? { scramCache: options.scramCache } : {}),
      allowPlainWithoutTLS: allowPlaintext,
      allowPlainWithUnverifiedTLS: options.allowPlainWithUnverifiedTLS ?? false,
    }),
    resource === undefined ? bind : bind.with({ resource }),
    iq,
    router,
    ping,
    options.debug === undefined || options.debug === false
      ? packetLog
      : packetLog.with({
          enabled: true,
          ...(typeof options.debug === 'function' ? { write: options.debug } : {}),
        }),
    ...(options.plugins ?? []),
  ] as const
  const connection = createConnection({
    transport: tcp({
      allowPlaintext,
      ...(options.tls ? { tls: options.tls } : {}),
      // The TLS handshake after <proceed/> is a negotiation step like the others.
      ...(options.timeouts?.negotiation === undefined
        ? {}
        : { handshakeTimeout: options.timeouts.negotiation }),
    }),
    domain: address.domain,
    ...(options.service === undefined ? {} : { service: options.service }),
    ...(options.timeouts === undefined ? {} : { timeouts: options.timeouts }),
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    plugins,
  })
  return connection as Connection<ApisOf<typeof plugins>>
}
