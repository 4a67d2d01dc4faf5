import { XMPPError } from '@core/errors'

/** Stable codes of {@link LifecycleError}. */
export type LifecycleErrorCode =
  /** `maxAttempts` reconnection attempts in a row failed; `cause` is the last failure. */
  | 'retries-exhausted'
  /** A post-connect or post-resume handler failed and `hookErrors` is `'fatal'`; `cause` is its error. */
  | 'hook-failed'

/** Lifecycle gave up on the connection for a reason of its own. */
export class LifecycleError extends XMPPError {
  declare readonly code: LifecycleErrorCode

  constructor(code: LifecycleErrorCode, message: string, cause?: unknown) {
    super(code, message, { cause })
  }
}
