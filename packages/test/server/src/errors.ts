import { XMPPError } from '@core/errors'

/** Stable codes of TestServerError. */
export type TestServerErrorCode = 'invalid-options' | 'invalid-user' | 'timeout'

/** Misuse of the test server (bad options, a bad user name) or a `waitFor()` that timed out. */
export class TestServerError extends XMPPError {
  declare readonly code: TestServerErrorCode

  constructor(code: TestServerErrorCode, message: string, cause?: unknown) {
    super(code, message, { cause })
  }
}
