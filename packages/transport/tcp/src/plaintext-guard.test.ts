import { serialize, STREAM_FOOTER, streamHeader, xml } from '@core/xml'
import { describe, expect, test } from 'vitest'
import { PlaintextGuard } from './plaintext-guard.js'

const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls'
const header = streamHeader({
  to: 'example.com',
  version: '1.0',
  xmlns: 'jabber:client',
  'xmlns:stream': 'http://etherx.jabber.org/streams',
})
const starttls = serialize(xml('starttls', { xmlns: NS_TLS }))
const auth = serialize(
  xml('auth', { xmlns: 'urn:ietf:params:xml:ns:xmpp-sasl', mechanism: 'PLAIN' }, 'AGEAYg=='),
)

/** What the guard says about each write, in order. */
function verdicts(...writes: string[]): (string | undefined)[] {
  const guard = new PlaintextGuard()
  return writes.map((w) => guard.check(w))
}

describe('PlaintextGuard: what may cross a stream that is not encrypted', () => {
  test('the header, <starttls/>, whitespace and the closing tag pass, in one write or several', () => {
    expect(verdicts(header, starttls, ' ', STREAM_FOOTER)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ])
    expect(verdicts(header + starttls)).toEqual([undefined])
  })

  test('a stream error with its children and text passes', () => {
    const error = serialize(
      xml(
        'stream:error',
        null,
        xml('policy-violation', { xmlns: 'urn:ietf:params:xml:ns:xmpp-streams' }),
        xml('text', { xmlns: 'urn:ietf:params:xml:ns:xmpp-streams' }, 'a > b'),
      ),
    )
    expect(verdicts(header, error + STREAM_FOOTER)).toEqual([undefined, undefined])
  })

  test('SASL, a bind, a stanza are refused, also batched behind an allowed element', () => {
    expect(verdicts(header, auth)).toEqual([undefined, '<auth/>'])
    expect(verdicts(header + starttls + auth)).toEqual(['<auth/>'])
    expect(verdicts(header, serialize(xml('iq', { type: 'set', id: 'b' }, xml('bind'))))).toEqual([
      undefined,
      '<iq/>',
    ])
    expect(verdicts(header, serialize(xml('message', { to: 'a@b' }, 'hi')))).toEqual([
      undefined,
      '<message/>',
    ])
  })

  test('<starttls/> in another namespace, or a quoted ">" posing as its end, is refused', () => {
    expect(verdicts(header, "<starttls xmlns='urn:example'/>")).toEqual([undefined, '<starttls/>'])
    expect(verdicts(header, `<auth mechanism='>' xmlns='${NS_TLS}'/>`)).toEqual([
      undefined,
      '<auth/>',
    ])
  })

  test('fails closed: text, comments, a cut tag, and anything after a refusal', () => {
    expect(verdicts(header, 'secret')).toEqual([undefined, 'text'])
    expect(verdicts(header, '<!-- x -->')).toEqual([undefined, 'a comment or CDATA section'])
    expect(verdicts(header, "<starttls xmlns='")).toEqual([undefined, 'an incomplete tag'])
    expect(verdicts(header, '<stream:error>')).toEqual([undefined, 'an incomplete element'])
    expect(verdicts(header, auth, starttls)).toEqual([undefined, '<auth/>', 'data after a refusal'])
    expect(verdicts(auth)).toEqual(['<auth/>'])
  })
})
