import { readFileSync } from 'node:fs'
import { connect as tlsConnect } from 'node:tls'
import { describe, expect, test } from 'vitest'
import { mechanismsIn, prosody, rawDirectTlsFeatures, rawFeatures, server } from './prosody.js'

// What the private Prosody offers, read over raw sockets: checks scripts/prosody.mjs set up
// the server the rest of the suite relies on.
describe.skipIf(!prosody)('the private Prosody (raw streams)', () => {
  test('plain c2s offers only STARTTLS, required; over TLS it offers SCRAM-SHA-1', async () => {
    const s = server()
    const features = await rawFeatures(s.domain)
    expect(features.plain).toContain(`from='${s.domain}'`)
    expect(features.plain).toMatch(
      /<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required\/><\/starttls>/,
    )
    // RFC 6120 §5.3.1 / §6.4.1: no SASL before TLS when TLS is mandatory.
    expect(mechanismsIn(features.plain)).toEqual([])
    expect(features.protocol).toMatch(/^TLSv1\.[23]$/)
    expect(features.mechanisms).toContain('SCRAM-SHA-1')
    expect(features.secure).not.toContain('urn:ietf:params:xml:ns:xmpp-tls')
  })

  test('the SCRAM-SHA-256 host offers SCRAM-SHA-256 over TLS', async () => {
    const features = await rawFeatures(server().sha256Domain)
    expect(features.mechanisms).toContain('SCRAM-SHA-256')
  })

  test('direct TLS port: features at once, with SASL', async () => {
    const features = await rawDirectTlsFeatures(server().domain)
    expect(mechanismsIn(features)).toContain('SCRAM-SHA-1')
    expect(features).not.toContain('urn:ietf:params:xml:ns:xmpp-tls')
  })

  test('its certificate is self-signed: rejected by default verification', async () => {
    const s = server()
    const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      const socket = tlsConnect({
        host: s.host,
        port: s.ports.c2sDirectTls,
        servername: 'localhost',
      })
      socket.once('secureConnect', () => {
        socket.destroy()
        resolve(null)
      })
      socket.once('error', (e) => resolve(e))
    })
    expect(err?.code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT')
    expect(readFileSync(s.certFile, 'utf8')).toContain('BEGIN CERTIFICATE')
  })
})
