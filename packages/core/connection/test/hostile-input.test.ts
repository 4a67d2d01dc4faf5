import { describe, expect, test } from 'vitest'
import type { HookMap } from '../src/index.js'
import { StreamError, type XMPPError } from '@core/errors'
import { createConnection } from '../src/index.js'
import { MemoryPeer } from '@test/memory-peer'
import { online, SHORT } from './helpers.js'

const NS_STREAM_ERRORS = 'urn:ietf:params:xml:ns:xmpp-streams'

/**
 * Feeds bad input to an online connection and returns what the app was told and what the
 * peer received: a typed error, a stream error element, a closed stream and transport.
 */
async function feed(send: (peer: MemoryPeer) => void | Promise<void>) {
  const { peer, conn } = await online()
  const disconnected = conn.hooks.next('disconnected')
  const errors: Error[] = []
  conn.hooks.on('error', ({ error }) => {
    errors.push(error)
  })
  const started = Date.now()
  await send(peer)
  const { error } = (await disconnected) as HookMap['disconnected'] & { error: XMPPError }
  const elapsed = Date.now() - started
  const streamError = peer.queued.find((el) => el.getName() === 'error')
  return {
    error,
    elapsed,
    sentCondition: streamError
      ?.getChildElements()
      .find((c) => c.getNS() === NS_STREAM_ERRORS)
      ?.getName(),
    peerStreamEnded: peer.streamEnded,
    transportOpen: peer.connected,
    reported: errors,
  }
}

async function expectRefused(send: (peer: MemoryPeer) => void | Promise<void>, condition: string) {
  const outcome = await feed(send)
  expect(outcome.error).toBeInstanceOf(StreamError)
  expect(outcome.error).toMatchObject({ condition, remote: false, code: 'stream-error' })
  expect(outcome.sentCondition).toBe(condition)
  expect(outcome.peerStreamEnded).toBe(true)
  expect(outcome.transportOpen).toBe(false)
  expect(outcome.elapsed).toBeLessThan(2000)
  return outcome
}

describe('hostile input through the connection', () => {
  test('DOCTYPE with internal entities (billion laughs)', async () => {
    await expectRefused(
      (p) =>
        p.send(
          '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><message>&lol2;</message>',
        ),
      'restricted-xml',
    )
  })

  test('a comment', async () => {
    await expectRefused((p) => p.send('<message><!-- hi --></message>'), 'restricted-xml')
  })

  test('a processing instruction', async () => {
    await expectRefused((p) => p.send('<?evil data?>'), 'restricted-xml')
  })

  test('an undefined entity in text', async () => {
    await expectRefused((p) => p.send('<message><body>&foo;</body></message>'), 'restricted-xml')
  })

  test('an undefined entity in an attribute', async () => {
    await expectRefused((p) => p.send("<message to='&foo;'/>"), 'restricted-xml')
  })

  test('invalid UTF-8', async () => {
    await expectRefused(
      (p) => p.send(new Uint8Array([0x3c, 0x6d, 0x3e, 0xff, 0x3c, 0x2f, 0x6d, 0x3e])),
      'not-well-formed',
    )
  })

  test('an overlong UTF-8 encoding', async () => {
    // 0xC0 0xAF is an overlong '/'.
    await expectRefused(
      (p) => p.send(new Uint8Array([0x3c, 0x6d, 0x3e, 0xc0, 0xaf, 0x3c, 0x2f, 0x6d, 0x3e])),
      'not-well-formed',
    )
  })

  test('a 10 MB stanza is refused without being buffered', async () => {
    const chunk = 'a'.repeat(64 * 1024)
    let sent = 0
    const outcome = await expectRefused(async (p) => {
      p.send('<message><body>')
      // Like a socket: one read per event-loop turn, until the connection hangs up.
      while (sent < 10 * 1024 * 1024 && p.connected) {
        p.send(chunk)
        sent += chunk.length
        await new Promise((resolve) => setImmediate(resolve))
      }
    }, 'policy-violation')
    // The default limit is 1 MiB: the connection stopped reading long before 10 MB.
    expect(sent).toBeLessThan(2 * 1024 * 1024)
    expect(outcome.error.message).toMatch(/size|large|limit/i)
  })

  test('10,000 nested elements', async () => {
    await expectRefused((p) => p.send(`<message>${'<a>'.repeat(10_000)}`), 'policy-violation')
  })

  test('a stanza with 100,000 attributes', async () => {
    let attrs = ''
    for (let i = 0; i < 100_000; i++) attrs += ` a${i}='1'`
    await expectRefused((p) => p.send(`<message${attrs}/>`), 'policy-violation')
  })

  test('</stream:stream> in the middle of a stanza', async () => {
    await expectRefused((p) => p.send('<message><body>hi</stream:stream>'), 'not-well-formed')
  })

  test('mismatched tags', async () => {
    await expectRefused((p) => p.send('<message><body>hi</message></body>'), 'not-well-formed')
  })

  test('an undeclared prefix', async () => {
    await expectRefused((p) => p.send('<message><foo:bar/></message>'), 'not-well-formed')
  })

  test('a second stream header before a restart', async () => {
    await expectRefused(
      (p) =>
        p.send(
          "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
        ),
      'bad-format',
    )
  })

  test('a bad JID in the to of an iq addressed to us', async () => {
    await expectRefused(
      (p) =>
        p.send(
          "<iq type='get' id='1' to='a@b@c/&lt;x' from='example.com'><ping xmlns='urn:xmpp:ping'/></iq>",
        ),
      'improper-addressing',
    )
  })

  test('a bad JID in the from of an iq request', async () => {
    await expectRefused(
      (p) => p.send("<iq type='get' id='1' from='@example.com'><ping xmlns='urn:xmpp:ping'/></iq>"),
      'invalid-from',
    )
  })
})

test('bad input during negotiation: one stream error, connect() rejects with it', async () => {
  const peer = new MemoryPeer()
  const conn = createConnection({
    transport: peer.transport,
    domain: 'example.com',
    timeouts: SHORT,
  })
  const connecting = conn.connect()
  await peer.nextHeader()
  peer.open()
  peer.send('<!-- comment --><stream:features/>')
  const error = await connecting.catch((e: unknown) => e)
  expect(error).toBeInstanceOf(StreamError)
  expect(error).toMatchObject({ condition: 'restricted-xml' })
  const sent = peer.written.join('')
  expect(sent.match(/<stream:error>/g)).toHaveLength(1)
  expect(sent.endsWith('</stream:error></stream:stream>')).toBe(true)
  expect(peer.connected).toBe(false)
})

describe('chunk boundaries', () => {
  const stream =
    "<message from='juliet@example.com/balcony' to='romeo@example.net' type='chat' id='m1'><body>Wherefore art thou, Romeo? &amp; caf\u00e9 \u{1F339}</body><thread>t1</thread></message>" +
    "<iq type='result' id='r1' from='example.com'><query xmlns='jabber:iq:roster'><item jid='nurse@example.com' name='N&apos;urse'/></query></iq>" +
    "<presence from='juliet@example.com/balcony'><show>away</show><status><![CDATA[<gone>]]></status></presence>"
  const bytes = new TextEncoder().encode(stream)

  test('every split point of a realistic stream gives the same stanzas', async () => {
    const reference = await collect([bytes])
    expect(reference).toHaveLength(3)
    for (let i = 1; i < bytes.length; i++) {
      const got = await collect([bytes.subarray(0, i), bytes.subarray(i)])
      expect(got, `split at byte ${i}`).toEqual(reference)
    }
  })

  test('byte by byte gives the same stanzas', async () => {
    const reference = await collect([bytes])
    const single = Array.from(bytes, (b) => new Uint8Array([b]))
    expect(await collect(single)).toEqual(reference)
  })
})

async function collect(chunks: Uint8Array[]): Promise<string[]> {
  const { peer, conn } = await online()
  const out: string[] = []
  conn.hooks.on('stanza', ({ element }) => {
    out.push(element.toString())
  })
  for (const chunk of chunks) peer.send(chunk)
  await new Promise((resolve) => setTimeout(resolve, 0))
  peer.close()
  return out
}
