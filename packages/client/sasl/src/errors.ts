import { XMPPError } from '@core/errors'

/**
 * A string that SASLprep (RFC 4013) refuses: a prohibited character or a violation of the
 * bidirectional rules. The message names the rule, never the string (it may be a password).
 */
export class SASLprepError extends XMPPError {
  /** The RFC 3454 table the offending character is in (`C.2.1`, ...), or `bidi` (§6). */
  readonly table: string

  constructor(table: string, message: string) {
    super('saslprep', message)
    this.table = table
  }
}

/** The app's `credentials()` callback failed or returned something else than two strings. */
export class CredentialsError extends XMPPError {
  constructor(message: string, cause?: unknown) {
    super('sasl-credentials', `sasl: ${message}`, { cause })
  }
}
