import { describe, expect, it } from 'vitest'
import { TcpError } from './errors.js'
import { parseService } from './service.js'

describe('parseService', () => {
  it('reads xmpp:// as STARTTLS and xmpps:// as direct TLS', () => {
    expect(parseService('xmpp://example.com')).toEqual({ tls: 'starttls', host: 'example.com' })
    expect(parseService('xmpps://example.com')).toEqual({ tls: 'direct', host: 'example.com' })
  })

  it('reads a port', () => {
    expect(parseService('xmpp://example.com:5222')).toEqual({
      tls: 'starttls',
      host: 'example.com',
      port: 5222,
    })
    expect(parseService('xmpps://127.0.0.1:443/')).toEqual({
      tls: 'direct',
      host: '127.0.0.1',
      port: 443,
    })
  })

  it('reads an IPv6 literal in brackets', () => {
    expect(parseService('xmpp://[::1]:5222')).toEqual({ tls: 'starttls', host: '::1', port: 5222 })
    expect(parseService('xmpps://[2001:db8::1]')).toEqual({ tls: 'direct', host: '2001:db8::1' })
  })

  it.each([
    'example.com',
    'ws://example.com',
    'xmpp:example.com',
    'xmpp://',
    'xmpp://example.com:0',
    'xmpp://example.com:70000',
    'xmpp://user@example.com',
    'xmpp://[nothex]:5222',
    'xmpp://example.com/path',
  ])('rejects %s with TcpError invalid-service', (service) => {
    let caught: unknown
    try {
      parseService(service)
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(TcpError)
    expect((caught as TcpError).code).toBe('invalid-service')
  })
})
