import { describe, expect, test } from 'vitest'
import { packetLog, redact, xml } from '../src/index.js'
import { online } from './helpers.js'

describe('packet log', () => {
  test('shows raw XML both ways when switched on, with secrets redacted', async () => {
    const lines: string[] = []
    const { peer, conn } = await online([packetLog.with({ write: (l) => lines.push(l) })])
    expect(lines).toEqual([])
    conn.plugins.packetLog.enabled = true
    await conn.send(
      xml(
        'auth',
        { xmlns: 'urn:ietf:params:xml:ns:xmpp-sasl', mechanism: 'PLAIN' },
        'AGp1bGlldAByMG0zMA==',
      ),
    )
    await conn.send(
      xml(
        'iq',
        { type: 'set', id: 'r' },
        xml('query', { xmlns: 'jabber:iq:register' }, xml('password', null, 'hunter2')),
      ),
    )
    await conn.send(xml('handshake', null, 'aabbccdd'))
    await peer.nextElement()
    peer.send(
      "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dj1zZWNyZXQ=</success><message id='m'/>",
    )
    const all = lines.join('\n')
    expect(all).not.toContain('AGp1bGlldAByMG0zMA==')
    expect(all).not.toContain('hunter2')
    expect(all).not.toContain('aabbccdd')
    expect(all).not.toContain('dj1zZWNyZXQ=')
    expect(lines).toContain(
      'OUT <auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">[redacted]</auth>',
    )
    expect(lines).toContain(
      "IN  <success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>[redacted]</success><message id='m'/>",
    )
    conn.plugins.packetLog.enabled = false
    const count = lines.length
    await conn.send(xml('message'))
    expect(lines).toHaveLength(count)
  })

  test('redaction holds when a chunk boundary splits a secret', () => {
    const a = redact("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>c2VjcmV0", false)
    expect(a.text).toBe("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>[redacted]")
    expect(a.inside).toBe(true)
    const b = redact('cGFydA==</response><r/>', a.inside)
    expect(b).toEqual({ text: '[redacted]</response><r/>', inside: false })
    expect(redact("<success xmlns='x'/>text", false).text).toBe("<success xmlns='x'/>text")
    expect(redact('<challenge><![CDATA[c2VjcmV0]]></challenge>', false).text).toBe(
      '<challenge>[redacted]</challenge>',
    )
  })

  test('a chunk boundary inside the opening tag does not leak the secret', async () => {
    const lines: string[] = []
    const { peer } = await online([packetLog.with({ enabled: true, write: (l) => lines.push(l) })])
    peer.send("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'")
    peer.send('>cj1zZWNyZXQ=</challenge>')
    expect(lines.join('\n')).not.toContain('cj1zZWNyZXQ=')
    expect(lines.join('')).toContain('[redacted]')
  })
})
