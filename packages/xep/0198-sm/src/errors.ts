import type { xml } from '@core/xml'
import { XMPPError } from '@core/errors'
type Element = ReturnType<typeof xml>

/** Stable codes of {@link SmError}. */
export type SmErrorCode =
  /** The stanza was not delivered: the session it was sent on is gone for good. */
  | 'not-delivered'
  /** The queue of unacknowledged stanzas is at its limit (`queueLimit`): send later. */
  | 'queue-full'
  /** Stream management is not enabled on this session (ack requests need it). */
  | 'not-enabled'
  /** The server broke XEP-0198: a malformed `h`, an ack for more than was sent, a wrong `previd`. */
  | 'protocol'
  /** The server refused to resume the session (`<failed/>`). */
  | 'resume-failed'
  /** The server refused to enable stream management (`<failed/>` to `<enable/>`). */
  | 'enable-failed'
  /** The session outlived the resumption window (`max`) before it could be resumed. */
  | 'session-expired'
  /** An ack request was aborted through its signal, or the stream ended before the ack came. */
  | 'ack-aborted'

/** A stream management (XEP-0198) error. */
export class SmError extends XMPPError {
  declare readonly code: SmErrorCode

  constructor(
    code: SmErrorCode,
    message: string,
    init: { condition?: string | undefined; element?: Element | undefined; cause?: unknown } = {},
  ) {
    super(code, message, init)
  }
}
