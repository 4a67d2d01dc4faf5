import {
  ConnectionError,
  SASLError,
  StanzaError,
  StreamError,
  TimeoutError,
  XMPPError,
} from '@core/errors'
import { describe, expect, test } from 'vitest'
import { isPermanentError } from './permanent.js'

describe('isPermanentError', () => {
  test('SASL failures are permanent, except temporary-auth-failure', () => {
    expect(isPermanentError(new SASLError('not-authorized'))).toBe(true)
    expect(isPermanentError(new SASLError('account-disabled'))).toBe(true)
    expect(isPermanentError(new SASLError('temporary-auth-failure'))).toBe(false)
  })

  test("the peer's stream errors: conflict, host-unknown, not-authorized, policy-violation are permanent", () => {
    for (const condition of ['conflict', 'host-unknown', 'not-authorized', 'policy-violation']) {
      expect(isPermanentError(new StreamError(condition, undefined, { remote: true }))).toBe(true)
    }
    for (const condition of ['system-shutdown', 'reset', 'connection-timeout', 'see-other-host']) {
      expect(isPermanentError(new StreamError(condition, undefined, { remote: true }))).toBe(false)
    }
  })

  test('a stream error we raised on bad data from the peer is not', () => {
    expect(isPermanentError(new StreamError('policy-violation'))).toBe(false)
    expect(isPermanentError(new StreamError('not-well-formed'))).toBe(false)
  })

  test('drops and timeouts are not; configuration errors are', () => {
    expect(isPermanentError(new ConnectionError('disconnected', 'gone'))).toBe(false)
    expect(isPermanentError(new TimeoutError('slow', 'connect'))).toBe(false)
    expect(isPermanentError(new XMPPError('connect-failed', 'refused'))).toBe(false)
    expect(isPermanentError(new XMPPError('certificate', 'bad cert'))).toBe(true)
    expect(isPermanentError(new XMPPError('foreign-jid', 'not ours'))).toBe(true)
    expect(isPermanentError(new ConnectionError('negotiation-failed', 'no bind'))).toBe(true)
  })

  test('a stanza error from negotiation is permanent unless of type wait', () => {
    expect(isPermanentError(new StanzaError('not-allowed', 'cancel'))).toBe(true)
    expect(isPermanentError(new StanzaError('resource-constraint', 'wait'))).toBe(false)
  })
})
