import { connect } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import {
  startTestServer,
  type TestServer,
  type TestServerOptions,
  testCerts,
} from '../src/index.js'
import { conditionOf, NS, RawClient } from './raw-client.js'

const servers: TestServer[] = []
const clients: RawClient[] = []

async function start(options: TestServerOptions = {}): Promise<TestServer> {
  const server = await startTestServer({
    users: { juliet: 'r0m30', romeo: 'j-u-l-i-e-t' },
    ...options,
  })
  servers.push(server)
  return server
}

async function client(server: TestServer): Promise<RawClient> {
  const c = await RawClient.connect(server.port)
  clients.push(c)
  return c
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy()
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

function mechanisms(features: ReturnType<RawClient['queue']['at']>): string[] {
  return (
    features
      ?.getChild('mechanisms', NS.sasl)
      ?.getChildren('mechanism')
      .map((m) => m.getText()) ?? []
  )
}

describe('login', () => {
  it('STARTTLS, SCRAM-SHA-1, bind, a message to self, a ping, a clean close', async () => {
    const server = await start()
    expect(server.service).toBe(`xmpp://127.0.0.1:${server.port}`)
    const c = await client(server)

    c.open()
    const header = await c.nextHeader()
    expect(header).toMatchObject({ from: 'localhost', version: '1.0', xmlns: 'jabber:client' })
    expect(header.id).toMatch(/^[0-9a-f]{16}$/)
    const plainFeatures = await c.next()
    expect(plainFeatures.getChild('starttls', NS.tls)?.getChild('required')).toBeDefined()
    expect(plainFeatures.getChild('mechanisms', NS.sasl)).toBeUndefined()

    c.send(`<starttls xmlns='${NS.tls}'/>`)
    expect((await c.next()).is('proceed', NS.tls)).toBe(true)
    await c.upgrade(server.certs.ca)
    const tlsFeatures = await c.openStream()
    expect(tlsFeatures.getChild('starttls', NS.tls)).toBeUndefined()
    expect(mechanisms(tlsFeatures)).toEqual(['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'])
    expect(c.headers[1]?.id).not.toBe(header.id)

    const { result, signatureValid } = await c.scram('juliet', 'r0m30', 'sha1')
    expect(result.is('success', NS.sasl)).toBe(true)
    expect(signatureValid).toBe(true)

    c.restart()
    const boundFeatures = await c.openStream()
    expect(boundFeatures.getChild('bind', NS.bind)).toBeDefined()
    expect(boundFeatures.getChild('session', NS.session)?.getChild('optional')).toBeDefined()

    const bound = await c.bind('balcony')
    expect(bound.attrs).toMatchObject({ type: 'result', id: 'bind1' })
    expect(bound.getChild('bind', NS.bind)?.getChildText('jid')).toBe('juliet@localhost/balcony')

    c.send(`<iq type='set' id='s1'><session xmlns='${NS.session}'/></iq>`)
    expect((await c.next()).attrs).toMatchObject({ type: 'result', id: 's1' })

    c.send("<message to='juliet@localhost' type='chat'><body>to myself</body></message>")
    const msg = await c.next()
    expect(msg.attrs).toMatchObject({ from: 'juliet@localhost/balcony', to: 'juliet@localhost' })
    expect(msg.getChildText('body')).toBe('to myself')

    c.send(`<iq type='get' id='p1' to='localhost'><ping xmlns='${NS.ping}'/></iq>`)
    const pong = await c.next()
    expect(pong.attrs).toMatchObject({
      type: 'result',
      id: 'p1',
      from: 'localhost',
      to: 'juliet@localhost/balcony',
    })

    // RFC 6121 §2.1.3: the roster get (no 'to') is answered for the account: empty here.
    c.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
    const roster = await c.next()
    expect(roster.attrs).toMatchObject({ type: 'result', id: 'r1' })
    expect(roster.getChild('query', 'jabber:iq:roster')?.children).toEqual([])

    c.send(
      "<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    )
    const disco = await c.next()
    expect(disco.attrs).toMatchObject({ type: 'error', id: 'd1' })
    expect(conditionOf(disco)).toBe('service-unavailable')

    c.send('</stream:stream>')
    await c.waitClosed()
    expect(c.footer).toBe(true)

    const session = server.sessions[0]!
    expect(session.tls).toBe(true)
    expect(session.mechanism).toBe('SCRAM-SHA-1')
    expect(session.username).toBe('juliet')
    expect(session.jid?.toString()).toBe('juliet@localhost/balcony')
    expect((await server.waitFor('close')).clean).toBe(true)
    expect(session.closed).toBe(true)
    const auth = await server.waitFor('auth-result')
    expect(auth).toMatchObject({ mechanism: 'SCRAM-SHA-1', success: true, username: 'juliet' })
    // What the client sent after TLS, as the server parsed it.
    expect(session.received.map((e) => e.name)).toEqual([
      'starttls',
      'auth',
      'response',
      'iq',
      'iq',
      'message',
      'iq',
      'iq',
      'iq',
    ])
    expect(server.received).toHaveLength(9)
  })

  it('directTls: TLS from the first byte, then SASL without STARTTLS', async () => {
    const server = await start({ directTls: true })
    expect(server.service).toBe(`xmpps://127.0.0.1:${server.port}`)
    const c = await RawClient.connectTls(server.port, server.certs.ca)
    clients.push(c)
    const features = await c.openStream()
    expect(features.getChild('starttls', NS.tls)).toBeUndefined()
    expect(mechanisms(features)).toContain('SCRAM-SHA-1')
    expect((await c.scram('juliet', 'r0m30')).signatureValid).toBe(true)
    expect(server.sessions[0]?.tls).toBe(true)
  })

  it('SCRAM-SHA-256, with a server signature the client can check', async () => {
    const server = await start()
    const c = await client(server)
    await c.secure(server.certs.ca)
    const { result, signatureValid } = await c.scram('romeo', 'j-u-l-i-e-t', 'sha256')
    expect(result.is('success', NS.sasl)).toBe(true)
    expect(signatureValid).toBe(true)
  })

  it('SCRAM with a wrong password or an unknown user fails with not-authorized', async () => {
    const server = await start()
    const c = await client(server)
    await c.secure(server.certs.ca)
    const wrong = await c.scram('juliet', 'nope', 'sha256')
    expect(wrong.result.is('failure', NS.sasl)).toBe(true)
    expect(conditionOf(wrong.result)).toBe('not-authorized')
    const unknown = await c.scram('mercutio', 'x', 'sha1')
    expect(conditionOf(unknown.result)).toBe('not-authorized')
    // Retries are allowed on the same stream.
    const ok = await c.scram('juliet', 'r0m30', 'sha1')
    expect(ok.result.is('success', NS.sasl)).toBe(true)
  })

  it('PLAIN over TLS; a wrong password is refused, then a retry succeeds', async () => {
    const server = await start({ mechanisms: ['PLAIN'] })
    const c = await client(server)
    const features = await c.secure(server.certs.ca)
    expect(mechanisms(features)).toEqual(['PLAIN'])
    const bad = await c.plain('juliet', 'wrong')
    expect(conditionOf(bad)).toBe('not-authorized')
    const spoof = await c.plain('juliet', 'r0m30', 'romeo@localhost')
    expect(conditionOf(spoof)).toBe('invalid-authzid')
    const good = await c.plain('juliet', 'r0m30', 'juliet@localhost')
    expect(good.is('success', NS.sasl)).toBe(true)
    expect(server.sessions[0]?.username).toBe('juliet')
    const results = server.log.filter((e) => e.type === 'auth-result')
    expect(results.map((e) => e.success)).toEqual([false, false, true])
    // No password anywhere in the log.
    expect(JSON.stringify(results)).not.toContain('r0m30')
  })

  it('refuses SASL before STARTTLS when TLS is required', async () => {
    const server = await start()
    const c = await client(server)
    await c.openStream()
    const failure = await c.plain('juliet', 'r0m30')
    expect(conditionOf(failure)).toBe('encryption-required')
    expect(server.sessions[0]?.authenticated).toBe(false)
  })

  it('without TLS offers SASL in plaintext and no STARTTLS', async () => {
    const server = await start({ tls: false, mechanisms: ['PLAIN', 'X-UNKNOWN'] })
    const c = await client(server)
    const features = await c.openStream()
    expect(features.getChild('starttls', NS.tls)).toBeUndefined()
    expect(mechanisms(features)).toEqual(['PLAIN', 'X-UNKNOWN'])
    c.send(`<auth xmlns='${NS.sasl}' mechanism='X-UNKNOWN'>=</auth>`)
    expect(conditionOf(await c.next())).toBe('invalid-mechanism')
    c.send(`<starttls xmlns='${NS.tls}'/>`)
    const refused = await c.next()
    expect(refused.is('failure', NS.tls)).toBe(true)
    await c.waitClosed()
    expect(c.footer).toBe(true)
  })

  it('requireTls: false offers both STARTTLS (not required) and SASL', async () => {
    const server = await start({ requireTls: false })
    const c = await client(server)
    const features = await c.openStream()
    const starttls = features.getChild('starttls', NS.tls)
    expect(starttls).toBeDefined()
    expect(starttls?.getChild('required')).toBeUndefined()
    expect(mechanisms(features)).toContain('PLAIN')
    expect((await c.plain('juliet', 'r0m30')).is('success', NS.sasl)).toBe(true)
  })

  it('SASL without an initial response gets an empty challenge first', async () => {
    const server = await start()
    const c = await client(server)
    await c.secure(server.certs.ca)
    c.send(`<auth xmlns='${NS.sasl}' mechanism='PLAIN'/>`)
    const challenge = await c.next()
    expect(challenge.is('challenge', NS.sasl)).toBe(true)
    expect(challenge.getText()).toBe('')
    c.send(
      `<response xmlns='${NS.sasl}'>${Buffer.from('\0juliet\0r0m30').toString('base64')}</response>`,
    )
    expect((await c.next()).is('success', NS.sasl)).toBe(true)
  })

  it('answers bad SASL data and <abort/> with the RFC 6120 conditions', async () => {
    const server = await start()
    const c = await client(server)
    await c.secure(server.certs.ca)
    c.send(`<auth xmlns='${NS.sasl}' mechanism='PLAIN'>not base64!</auth>`)
    expect(conditionOf(await c.next())).toBe('incorrect-encoding')
    c.send(
      `<auth xmlns='${NS.sasl}' mechanism='SCRAM-SHA-1'>${Buffer.from('n,,garbage').toString('base64')}</auth>`,
    )
    expect(conditionOf(await c.next())).toBe('malformed-request')
    c.send(`<auth xmlns='${NS.sasl}' mechanism='SCRAM-SHA-1'/>`)
    expect((await c.next()).is('challenge', NS.sasl)).toBe(true)
    c.send(`<abort xmlns='${NS.sasl}'/>`)
    expect(conditionOf(await c.next())).toBe('aborted')
  })

  it('binds a generated resource, and never the same resource twice', async () => {
    const server = await start()
    const a = await client(server)
    const b = await client(server)
    const c = await client(server)
    const ja = await a.login(server.certs.ca, 'juliet', 'r0m30', 'home')
    const jb = await b.login(server.certs.ca, 'juliet', 'r0m30', 'home')
    const jc = await c.login(server.certs.ca, 'juliet', 'r0m30')
    expect(ja).toBe('juliet@localhost/home')
    expect(jb).toMatch(/^juliet@localhost\/home-[0-9a-f]{6}$/)
    expect(jc).toMatch(/^juliet@localhost\/[0-9a-f]{12}$/)
    // Both sessions stay up: the first one still answers.
    a.send(`<iq type='get' id='p' to='localhost'><ping xmlns='${NS.ping}'/></iq>`)
    expect((await a.next()).attrs.type).toBe('result')
  })
})

describe('routing', () => {
  it('two clients exchange messages; bare JIDs reach every resource', async () => {
    const server = await start()
    const romeo = await client(server)
    const juliet1 = await client(server)
    const juliet2 = await client(server)
    const r = await romeo.login(server.certs.ca, 'romeo', 'j-u-l-i-e-t', 'garden')
    const j1 = await juliet1.login(server.certs.ca, 'juliet', 'r0m30', 'balcony')
    await juliet2.login(server.certs.ca, 'juliet', 'r0m30', 'bed')

    romeo.send(`<message to='${j1}' type='chat' id='m1'><body>full</body></message>`)
    const got = await juliet1.next()
    expect(got.attrs).toMatchObject({ from: r, to: j1, id: 'm1' })
    expect(got.getChildText('body')).toBe('full')
    expect(await juliet2.idle(50)).toEqual([])

    romeo.send("<message to='Juliet@LOCALHOST' type='chat'><body>bare</body></message>")
    expect((await juliet1.next()).getChildText('body')).toBe('bare')
    expect((await juliet2.next()).getChildText('body')).toBe('bare')

    juliet1.send(`<message to='${r}'><body>back</body></message>`)
    const back = await romeo.next()
    expect(back.attrs.from).toBe(j1)
    expect(back.getChildText('body')).toBe('back')
    const route = await server.waitFor('route', (e) => e.to.jid?.toString() === r)
    expect(route.from.jid?.toString()).toBe(j1)
  })

  it('routes iqs between full JIDs and bounces what it cannot deliver', async () => {
    const server = await start()
    const romeo = await client(server)
    const juliet = await client(server)
    const r = await romeo.login(server.certs.ca, 'romeo', 'j-u-l-i-e-t', 'garden')
    const j = await juliet.login(server.certs.ca, 'juliet', 'r0m30', 'balcony')

    romeo.send(`<iq type='get' id='v1' to='${j}'><query xmlns='jabber:iq:version'/></iq>`)
    const request = await juliet.next()
    expect(request.attrs).toMatchObject({ type: 'get', id: 'v1', from: r })
    juliet.send(`<iq type='result' id='v1' to='${r}'/>`)
    expect((await romeo.next()).attrs).toMatchObject({ type: 'result', id: 'v1', from: j })

    // A full JID that is not online, a bare JID, another domain, an unknown user.
    romeo.send(
      "<iq type='get' id='v2' to='juliet@localhost/gone'><query xmlns='jabber:iq:version'/></iq>",
    )
    expect(conditionOf(await romeo.next())).toBe('service-unavailable')
    romeo.send(
      "<iq type='get' id='v3' to='juliet@localhost'><query xmlns='jabber:iq:version'/></iq>",
    )
    expect(conditionOf(await romeo.next())).toBe('service-unavailable')
    romeo.send("<message to='nurse@elsewhere.example' id='m2'><body>x</body></message>")
    const remote = await romeo.next()
    expect(remote.attrs).toMatchObject({ type: 'error', id: 'm2' })
    expect(conditionOf(remote)).toBe('remote-server-not-found')
    romeo.send("<message to='tybalt@localhost' id='m3'><body>x</body></message>")
    expect(conditionOf(await romeo.next())).toBe('service-unavailable')
    romeo.send("<message to='bad@@jid' id='m4'><body>x</body></message>")
    expect(conditionOf(await romeo.next())).toBe('jid-malformed')

    // Presence is accepted and goes nowhere; a message to a user who is offline is dropped.
    juliet.destroy()
    await server.waitFor('close')
    romeo.send('<presence/>')
    romeo.send("<message to='juliet@localhost' type='chat'><body>x</body></message>")
    romeo.send(`<iq type='get' id='p' to='localhost'><ping xmlns='${NS.ping}'/></iq>`)
    const next = await romeo.next()
    expect(next.attrs).toMatchObject({ type: 'result', id: 'p' })
  })

  it('intercept() lets a test answer what the server does not know', async () => {
    const server = await start()
    const off = server.intercept((el, session) => {
      if (el.name !== 'iq' || el.getChild('query', 'jabber:iq:version') === undefined) return false
      session.send(`<iq type='result' id='${el.attrs.id}'><query xmlns='jabber:iq:version'/></iq>`)
      return true
    })
    const c = await client(server)
    await c.login(server.certs.ca, 'juliet', 'r0m30')
    c.send("<iq type='get' id='r1'><query xmlns='jabber:iq:version'/></iq>")
    expect((await c.next()).attrs).toMatchObject({ type: 'result', id: 'r1' })
    off()
    c.send("<iq type='get' id='r2'><query xmlns='jabber:iq:version'/></iq>")
    expect(conditionOf(await c.next())).toBe('service-unavailable')
  })
})

describe('bad clients', () => {
  async function streamError(c: RawClient): Promise<string | undefined> {
    const el = await c.next()
    expect(el.name).toBe('stream:error')
    await c.waitClosed()
    expect(c.footer).toBe(true)
    return conditionOf(el)
  }

  it('a header for another domain gets host-unknown, after the server header', async () => {
    const server = await start()
    const c = await client(server)
    c.open('example.org')
    await c.nextHeader()
    expect(await streamError(c)).toBe('host-unknown')
    expect((await server.waitFor('stream-error')).condition).toBe('host-unknown')
  })

  it('a stanza before authentication gets not-authorized', async () => {
    const server = await start()
    const c = await client(server)
    await c.openStream()
    c.send("<message to='juliet@localhost'><body>hi</body></message>")
    expect(await streamError(c)).toBe('not-authorized')
  })

  it('a forged from gets invalid-from', async () => {
    const server = await start()
    const c = await client(server)
    await c.login(server.certs.ca, 'juliet', 'r0m30')
    c.send("<message from='romeo@localhost/x' to='juliet@localhost'><body>hi</body></message>")
    expect(await streamError(c)).toBe('invalid-from')
  })

  it('a stanza over the size limit gets policy-violation', async () => {
    const server = await start({ limits: { maxStanzaSize: 1000 } })
    const c = await client(server)
    await c.login(server.certs.ca, 'juliet', 'r0m30')
    c.send(`<message to='juliet@localhost'><body>${'x'.repeat(2000)}</body></message>`)
    expect(await streamError(c)).toBe('policy-violation')
  })

  it('malformed XML gets not-well-formed', async () => {
    const server = await start()
    const c = await client(server)
    await c.openStream()
    c.send('<a><b></a>')
    expect(await streamError(c)).toBe('not-well-formed')
  })
})

describe('certificates and shutdown', () => {
  it('testCerts: the server certificate is trusted through the CA, the self-signed one is not', async () => {
    expect(testCerts.ca).toContain('BEGIN CERTIFICATE')
    expect(testCerts.key).toContain('PRIVATE KEY')
    const server = await start({ tls: { ...testCerts.selfSigned } })
    expect(server.certs.ca).toBe(testCerts.selfSigned.cert)
    const c = await client(server)
    await c.openStream()
    c.send(`<starttls xmlns='${NS.tls}'/>`)
    await c.next()
    await expect(c.upgrade(testCerts.ca)).rejects.toThrow(/self[- ]signed/i)

    const trusting = await client(server)
    await trusting.secure(server.certs.ca)
    expect(server.sessions[1]?.tls).toBe(true)
  })

  it('close() ends every session with system-shutdown and frees the port', async () => {
    const server = await start()
    const a = await client(server)
    const b = await client(server)
    await a.login(server.certs.ca, 'juliet', 'r0m30')
    await b.openStream()
    const port = server.port
    await server.close()
    for (const c of [a, b]) {
      const el = await c.next()
      expect(conditionOf(el)).toBe('system-shutdown')
      await c.waitClosed()
    }
    expect(server.sessions.every((s) => s.closed)).toBe(true)
    await expect(
      new Promise((resolve, reject) => {
        const s = connect(port, '127.0.0.1', () => resolve(s))
        s.once('error', reject)
      }),
    ).rejects.toThrow(/ECONNREFUSED/)
    // The same port can be taken again.
    const again = await start({ port })
    expect(again.port).toBe(port)
  })
})
