import { describe, expect, test } from 'vitest'
import {
  AbortError,
  ConnectionError,
  JIDError,
  PluginError,
  SASLError,
  StanzaError,
  StreamError,
  TimeoutError,
  XMPPError,
} from './index.js'

describe('typed errors', () => {
  test('each has a stable code, its XMPP condition where there is one, and its class name', () => {
    const cases: [XMPPError, string, string | undefined, string][] = [
      [new StreamError('conflict'), 'stream-error', 'conflict', 'StreamError'],
      [
        new StanzaError('item-not-found', 'cancel'),
        'stanza-error',
        'item-not-found',
        'StanzaError',
      ],
      [new SASLError('not-authorized'), 'sasl-error', 'not-authorized', 'SASLError'],
      [new TimeoutError('no answer', 'bind'), 'timeout', undefined, 'TimeoutError'],
      [new AbortError(), 'aborted', undefined, 'AbortError'],
      [
        new ConnectionError('stopped', 'closed by the app'),
        'stopped',
        undefined,
        'ConnectionError',
      ],
      [new JIDError('bad'), 'invalid-jid', 'jid-malformed', 'JIDError'],
      [
        new PluginError('missing-dependency', 'sm', 'needs iq'),
        'missing-dependency',
        undefined,
        'PluginError',
      ],
    ]
    for (const [error, code, condition, name] of cases) {
      expect(error).toBeInstanceOf(XMPPError)
      expect(error).toBeInstanceOf(Error)
      expect({ code: error.code, condition: error.condition, name: error.name }).toEqual({
        code,
        condition,
        name,
      })
    }
  })

  test('details: who sent a stream error, its text, the step that timed out, the cause', () => {
    const remote = new StreamError('system-shutdown', undefined, { remote: true, text: 'bye' })
    expect(remote).toMatchObject({
      remote: true,
      text: 'bye',
      message: 'stream error: system-shutdown',
    })
    expect(new StreamError('bad-format').remote).toBe(false)
    expect(new TimeoutError('late', 'tls').step).toBe('tls')
    const cause = new Error('ECONNRESET')
    expect(new ConnectionError('disconnected', 'dropped', cause).cause).toBe(cause)
    expect(new StanzaError('forbidden', 'auth', { text: 'no' }).message).toBe(
      'stanza error: forbidden (no)',
    )
  })
})
