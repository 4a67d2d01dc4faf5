import { describe, expect, test } from 'vitest'
import { packetLog, redact } from '../src/index.js'
import { xml } from '@core/xml'
import { connectToMemoryPeer as online } from '@test/memory-peer'

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

  test('switched on at run time, off and on again, it logs what passes while on', async () => {
    // The log taps the connection only once it is first switched on (idle connections
    // never log): switching it on after connect() must still show both directions.
    const lines: string[] = []
    const { peer, conn } = await online([packetLog.with({ write: (l) => lines.push(l) })])
    expect(conn.plugins.packetLog.enabled).toBe(false)
    await conn.send(xml('message', { id: 'off-1' }))
    peer.send("<message id='off-2'/>")
    await peer.nextElement()
    expect(lines).toEqual([])

    conn.plugins.packetLog.enabled = true
    expect(conn.plugins.packetLog.enabled).toBe(true)
    await conn.send(xml('message', { id: 'on-1' }))
    // Bytes, split inside a multi-byte character and inside a secret's opening tag.
    const bytes = new TextEncoder().encode(
      "<message id='on-2'><body>caf\u00e9</body></message><challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>c2VjcmV0</challenge>",
    )
    const cut = bytes.indexOf(0xa9) // the second byte of \u00e9
    peer.send(bytes.slice(0, cut))
    peer.send(bytes.slice(cut, cut + 40))
    peer.send(bytes.slice(cut + 40))
    await peer.nextElement()
    expect(lines[0]).toBe('OUT <message id="on-1"/>')
    // One line per chunk read: put together, the text as sent, the secret redacted.
    expect(lines.slice(1).every((l) => l.startsWith('IN  '))).toBe(true)
    expect(
      lines
        .slice(1)
        .map((l) => l.slice(4))
        .join(''),
    ).toBe(
      "<message id='on-2'><body>caf\u00e9</body></message><challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>[redacted]</challenge>",
    )

    conn.plugins.packetLog.enabled = false
    const count = lines.length
    await conn.send(xml('message', { id: 'off-3' }))
    peer.send("<message id='off-4'/>")
    await peer.nextElement()
    expect(lines).toHaveLength(count)

    conn.plugins.packetLog.enabled = true
    await conn.send(xml('message', { id: 'on-3' }))
    peer.send("<message id='on-4'/>")
    await peer.nextElement()
    expect(lines.slice(count)).toEqual(['OUT <message id="on-3"/>', "IN  <message id='on-4'/>"])
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
