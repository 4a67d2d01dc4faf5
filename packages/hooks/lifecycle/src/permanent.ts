import { SASLError, StanzaError, StreamError, type XMPPError } from '@core/errors'

/**
 * Stream errors the peer sends when trying again would fail the same way (RFC 6120 §4.9.3):
 * we were replaced by another login (`conflict`: reconnecting would kick that one in turn),
 * the server does not serve this domain, refuses us, or says we broke its rules or the
 * protocol.
 */
const PERMANENT_STREAM_CONDITIONS: ReadonlySet<string> = new Set(
  'bad-format bad-namespace-prefix conflict host-gone host-unknown improper-addressing invalid-from invalid-namespace not-authorized not-well-formed policy-violation restricted-xml unsupported-encoding unsupported-stanza-type unsupported-version'.split(
    ' ',
  ),
)

/**
 * Error codes (of other packages' typed errors) that say the configuration is wrong: the
 * credentials callback or SASLprep refused the input, the server bound another account or
 * nothing usable, the certificate does not verify, TLS is required and not offered, the
 * service address is malformed or SRV says there is no service, a required stream feature
 * is missing, too many redirects, a plugin failed.
 */
const PERMANENT_CODES: ReadonlySet<string> = new Set(
  'sasl-credentials saslprep invalid-bind-result foreign-jid certificate tls-required invalid-service service-unavailable negotiation-failed redirect-limit missing-dependency duplicate-plugin setup-failed setup-timeout duplicate-feature duplicate-negotiator hook-failed retries-exhausted'.split(
    ' ',
  ),
)

/**
 * The default test of whether a connection failure is permanent, i.e. whether reconnecting
 * would only repeat it:
 * - a SASL failure, except `temporary-auth-failure` (RFC 6120 §6.5.10 invites a retry):
 *   bad credentials, a disabled account, a mechanism refused;
 * - a stream error the peer sent with a condition of {@link PERMANENT_STREAM_CONDITIONS}
 *   (a stream error we detected in the peer's data is not: the next session may be fine);
 * - a stanza error that ended negotiation (a bind refused), unless of type `wait`;
 * - a typed error whose code says the configuration is wrong (see the README).
 * Drops, timeouts, refused TCP connections, `system-shutdown`, `reset` and the like are not.
 */
export function isPermanentError(error: XMPPError): boolean {
  if (error instanceof SASLError) return error.condition !== 'temporary-auth-failure'
  if (error instanceof StreamError) {
    return error.remote && PERMANENT_STREAM_CONDITIONS.has(error.condition ?? '')
  }
  if (error instanceof StanzaError) return error.type !== 'wait'
  return PERMANENT_CODES.has(error.code)
}
