import { describe, expect, test } from 'vitest'
import { checkPlaintext, isLoopback, parseEndpoint, redirectTarget } from './endpoint.js'
import { WebSocketError } from './errors.js'

describe('loopback', () => {
  test.each([
    ['localhost', true],
    ['LOCALHOST', true],
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['[::1]', true],
    ['localhost.example.com', false],
    ['foo.localhost', false],
    ['128.0.0.1', false],
    ['[::2]', false],
    ['example.com', false],
  ])('%s: %s', (host, expected) => {
    expect(isLoopback(host)).toBe(expected)
  })

  test('ws:// to [::1] passes, to a LAN address does not, wss:// always does', () => {
    expect(() => checkPlaintext(parseEndpoint('ws://[::1]:5280/ws'), false)).not.toThrow()
    expect(() => checkPlaintext(parseEndpoint('ws://192.168.1.2/ws'), false)).toThrow(
      WebSocketError,
    )
    expect(() => checkPlaintext(parseEndpoint('ws://192.168.1.2/ws'), true)).not.toThrow()
    expect(() => checkPlaintext(parseEndpoint('wss://example.com/ws'), false)).not.toThrow()
  })
})

describe('see-other-uri targets (RFC 7395 §3.6.1)', () => {
  const from = (url: string) => parseEndpoint(url)
  const refusal = (fn: () => unknown) => {
    try {
      fn()
    } catch (error) {
      return (error as WebSocketError).code
    }
    return 'accepted'
  }

  test.each([
    ['wss://a.example/ws', 'wss://b.example/ws', 'accepted'],
    ['ws://127.0.0.1/ws', 'wss://b.example/ws', 'accepted'],
    ['ws://127.0.0.1/ws', 'ws://localhost:5281/ws', 'accepted'],
    ['wss://a.example/ws', 'ws://b.example/ws', 'redirect-refused'],
    ['wss://localhost/ws', 'ws://127.0.0.1/ws', 'redirect-refused'],
    ['ws://127.0.0.1/ws', 'ws://b.example/ws', 'plaintext-refused'],
    ['wss://a.example/ws', 'https://a.example/http-bind', 'redirect-refused'],
    ['wss://a.example/ws', '/relative', 'redirect-refused'],
    ['wss://a.example/ws', 'wss://b.example/ws#x', 'redirect-refused'],
  ])('%s -> %s: %s', (a, b, expected) => {
    expect(refusal(() => redirectTarget(from(a), b, false))).toBe(expected)
  })

  test('allowPlaintext permits ws:// elsewhere, but never a move from wss:// to ws://', () => {
    expect(refusal(() => redirectTarget(from('ws://127.0.0.1/'), 'ws://b.example/', true))).toBe(
      'accepted',
    )
    expect(refusal(() => redirectTarget(from('wss://a.example/'), 'ws://b.example/', true))).toBe(
      'redirect-refused',
    )
  })
})
