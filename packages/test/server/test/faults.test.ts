import { afterEach, describe, expect, it } from 'vitest'
import {
  type Faults,
  type Step,
  startTestServer,
  type TestServer,
  type TestServerOptions,
} from '../src/index.js'
import { conditionOf, NS, RawClient } from './raw-client.js'

const servers: TestServer[] = []
const clients: RawClient[] = []

async function start(faults: Faults, options: TestServerOptions = {}): Promise<TestServer> {
  const server = await startTestServer({ users: { juliet: 'r0m30' }, faults, ...options })
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

const MSG = "<message to='juliet@localhost' type='chat'><body>n</body></message>"
const PING = (id: string) =>
  `<iq type='get' id='${id}' to='localhost'><ping xmlns='${NS.ping}'/></iq>`

describe('closing the socket', () => {
  it('closeAfterStanzas: handles n elements after bind, then drops', async () => {
    const server = await start({ closeAfterStanzas: 2 })
    const c = await client(server)
    await c.login(server.certs.ca, 'juliet', 'r0m30')
    c.send(MSG.replace('n<', '1<') + MSG.replace('n<', '2<') + MSG.replace('n<', '3<'))
    expect((await c.next()).getChildText('body')).toBe('1')
    expect((await c.next()).getChildText('body')).toBe('2')
    await c.waitClosed()
    expect(c.queue).toEqual([])
    expect(c.footer).toBe(false)
    expect((await server.waitFor('fault')).fault).toBe('closeAfterStanzas')
    expect((await server.waitFor('close')).clean).toBe(false)
  })

  it('closeAfterStanzas: 0 drops right after the bind result', async () => {
    const server = await start({ closeAfterStanzas: 0 })
    const c = await client(server)
    const jid = await c.login(server.certs.ca, 'juliet', 'r0m30')
    expect(jid).toMatch(/^juliet@localhost\//)
    await c.waitClosed()
  })

  it('closeAfterBytes: reads up to n bytes after bind, then drops', async () => {
    const server = await start({ closeAfterBytes: MSG.length + 10 })
    const c = await client(server)
    await c.login(server.certs.ca, 'juliet', 'r0m30')
    c.send(MSG)
    expect((await c.next()).getChildText('body')).toBe('n')
    c.send(MSG)
    await c.waitClosed()
    expect(c.queue).toEqual([])
    const session = server.sessions[0]!
    expect(session.received.filter((e) => e.name === 'message')).toHaveLength(1)
    expect((await server.waitFor('fault')).fault).toBe('closeAfterBytes')
  })

  // What the scripted login got before the socket closed.
  async function progress(c: RawClient, ca: string): Promise<string> {
    let reached = 'none'
    try {
      c.open()
      await c.nextHeader(500)
      reached = 'header'
      await c.next(500)
      reached = 'features'
      c.send(`<starttls xmlns='${NS.tls}'/>`)
      await c.next(500)
      reached = 'proceed'
      await c.upgrade(ca)
      reached = 'tls'
      await c.openStream()
      reached = 'tls-features'
      const { result } = await c.scram('juliet', 'r0m30')
      if (!result.is('success', NS.sasl)) return reached
      reached = 'success'
      c.restart()
      await c.openStream()
      reached = 'bound-features'
      await c.bind()
      reached = 'bound'
    } catch {
      // Closed. scram() throws when the socket closes after its challenge: look at the wire.
      if (reached === 'tls-features' && c.chunks.some((ch) => ch.includes('<challenge'))) {
        reached = 'challenge'
      }
    }
    return reached
  }

  const AT: [Step, string][] = [
    ['connect', 'none'],
    ['header', 'none'],
    ['features', 'header'],
    ['starttls', 'features'],
    ['tls', 'tls'],
    ['auth', 'tls-features'],
    ['response', 'challenge'],
    ['bind', 'bound-features'],
  ]

  it.each(AT)('closeAtStep %s: the login stops there', async (step, expected) => {
    const server = await start({ closeAtStep: step })
    const c = await client(server)
    const reached = await progress(c, server.certs.ca)
    await c.waitClosed()
    expect(reached).toBe(expected)
    const fault = await server.waitFor('fault')
    expect(fault).toMatchObject({ fault: 'closeAtStep', step })
  })

  it('closeAtStep with a predicate: only the features of the third stream', async () => {
    const server = await start({ closeAtStep: (e) => e.step === 'features' && e.stream === 3 })
    const c = await client(server)
    expect(await progress(c, server.certs.ca)).toBe('success')
  })

  it("closeAtStep 'close': no </stream:stream> in answer to the client's", async () => {
    const server = await start({ closeAtStep: 'close' })
    const c = await client(server)
    await c.login(server.certs.ca, 'juliet', 'r0m30')
    c.send('</stream:stream>')
    await c.waitClosed()
    expect(c.footer).toBe(false)
    expect((await server.waitFor('close')).clean).toBe(true)
  })

  it('once: only the next session gets the faults', async () => {
    const server = await start({ closeAtStep: 'header', once: true })
    const first = await client(server)
    first.open()
    await first.waitClosed()
    expect(first.headers).toEqual([])
    expect(server.faults).toEqual({})
    const second = await client(server)
    await second.openStream()
    expect(second.headers).toHaveLength(1)
  })
})

describe('delays and silence', () => {
  it('delay: the answer at a step comes late', async () => {
    const server = await start({ delay: { step: 'bind', ms: 300 } })
    const c = await client(server)
    await c.secure(server.certs.ca)
    await c.scram('juliet', 'r0m30')
    c.restart()
    await c.openStream()
    const t0 = Date.now()
    const bound = await c.bind()
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280)
    expect(bound.attrs.type).toBe('result')
  })

  it('close() does not wait for a delayed answer, and the answer never comes', async () => {
    const server = await start({ delay: { step: 'iq', ms: 3000 } })
    const c = await client(server)
    await c.login(server.certs.ca, 'juliet', 'r0m30')
    c.send(PING('p1'))
    await server.waitFor('fault', (e) => e.fault === 'delay')
    const t0 = Date.now()
    await server.close()
    expect(Date.now() - t0).toBeLessThan(1000)
    const el = await c.next()
    expect(el.name).toBe('stream:error')
    expect(conditionOf(el)).toBe('system-shutdown')
    await c.waitClosed()
    expect(c.queue).toEqual([])
  })

  it('session.close() discards delayed output', async () => {
    const server = await start({ delay: { step: 'iq', ms: 5000 } })
    const c = await client(server)
    c.answerClose = false
    await c.login(server.certs.ca, 'juliet', 'r0m30')
    c.send(PING('p1'))
    await server.waitFor('fault', (e) => e.fault === 'delay')
    server.sessions[0]!.close('reset')
    const got = await c.idle(500)
    expect(got.map((e) => `${e.name}/${conditionOf(e)}`)).toEqual(['stream:error/reset'])
    expect(c.footer).toBe(true)
    // Nothing at all after the footer, not even bytes the parser would ignore.
    expect(c.chunks.join('').endsWith('</stream:stream>')).toBe(true)
    expect(c.chunks.join('')).not.toMatch(/id=["']p1["']/)
  })

  it('delay with a predicate: a ping is answered late, and what follows waits behind it', async () => {
    const server = await start({
      delay: { step: (e) => e.element?.getChild('ping', NS.ping) !== undefined, ms: 300 },
    })
    const c = await client(server)
    await c.login(server.certs.ca, 'juliet', 'r0m30')
    const t0 = Date.now()
    c.send(PING('p1') + MSG)
    const first = await c.next()
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280)
    expect(first.attrs).toMatchObject({ type: 'result', id: 'p1' })
    expect((await c.next()).name).toBe('message')
  })

  it('withhold, set on a live session: pings go unanswered, messages still flow', async () => {
    const server = await start({})
    const c = await client(server)
    await c.login(server.certs.ca, 'juliet', 'r0m30')
    server.sessions[0]!.faults = { withhold: 'iq' }
    c.send(PING('p1') + MSG)
    const got = await c.idle(300)
    expect(got.map((e) => e.name)).toEqual(['message'])
    expect((await server.waitFor('fault')).fault).toBe('withhold')
  })

  it("withhold 'close': the client's </stream:stream> is never answered", async () => {
    const server = await start({ withhold: 'close' })
    const c = await client(server)
    await c.login(server.certs.ca, 'juliet', 'r0m30')
    c.send('</stream:stream>')
    await c.idle(300)
    expect(c.footer).toBe(false)
    expect(c.closed).toBe(false)
  })
})

describe('withhold and inject compose', () => {
  it('withhold + inject at a step: the injected data replaces the answer', async () => {
    const answer = `<failure xmlns='${NS.sasl}'><x-made-up/></failure>`
    const server = await start({ withhold: 'auth', inject: { step: 'auth', data: answer } })
    const c = await client(server)
    await c.secure(server.certs.ca)
    const result = await c.plain('juliet', 'r0m30')
    expect(result.is('failure', NS.sasl)).toBe(true)
    expect(result.getChildElements().map((e) => e.name)).toEqual(['x-made-up'])
    // The withheld answer (PLAIN's <success/>) never came.
    expect(await c.idle(200)).toEqual([])
    const faults = server.log.filter((e) => e.type === 'fault').map((e) => e.fault)
    expect(faults).toEqual(['withhold', 'inject'])
    // ...so the session is not authenticated and no auth-result was reported.
    expect(server.sessions[0]!.authenticated).toBe(false)
    expect(server.log.filter((e) => e.type === 'auth-result')).toEqual([])
  })

  it('withhold + closeAtStep: the socket is closed all the same', async () => {
    const server = await start({ withhold: 'features', closeAtStep: 'features' })
    const c = await client(server)
    c.open()
    await c.nextHeader()
    await c.waitClosed()
    expect(c.queue).toEqual([])
  })
})

describe('injection', () => {
  it('inject at starttls: raw bytes right after <proceed/>, in the same write', async () => {
    const injected = "<message from='mallory@localhost'><body>pwned</body></message>"
    const server = await start({ inject: { step: 'starttls', data: injected } })
    const c = await client(server)
    await c.openStream()
    c.send(`<starttls xmlns='${NS.tls}'/>`)
    await c.next()
    const chunk = c.chunks.find((ch) => ch.includes('<proceed'))
    expect(chunk).toMatch(
      /<proceed xmlns="urn:ietf:params:xml:ns:xmpp-tls"\/><message from='mallory/,
    )
    // The TLS upgrade still happens.
    await c.upgrade(server.certs.ca)
    await c.openStream()
    expect(server.sessions[0]!.tls).toBe(true)
  })

  it('inject binary data at connect, before anything else', async () => {
    const server = await start({ inject: { step: 'connect', data: new Uint8Array([0x3c, 0xff]) } })
    const c = await client(server)
    c.open()
    await c.until(() => c.parseError !== undefined, 'a parse error')
    expect(c.parseError?.message).toMatch(/UTF-8/)
  })
})

describe('SASL hostility', () => {
  it('badServerSignature: v= does not verify', async () => {
    const server = await start({ badServerSignature: true })
    const c = await client(server)
    await c.secure(server.certs.ca)
    const { result, signatureValid } = await c.scram('juliet', 'r0m30')
    expect(result.is('success', NS.sasl)).toBe(true)
    expect(signatureValid).toBe(false)
  })

  it('omitServerSignature: <success/> carries no data', async () => {
    const server = await start({ omitServerSignature: true })
    const c = await client(server)
    await c.secure(server.certs.ca)
    const { result, signatureValid } = await c.scram('juliet', 'r0m30', 'sha256')
    expect(result.is('success', NS.sasl)).toBe(true)
    expect(result.getText()).toBe('')
    expect(signatureValid).toBeUndefined()
  })

  it('saslFailure: SCRAM fails at the end, PLAIN at <auth/>, with the condition given', async () => {
    const server = await start({ saslFailure: 'not-authorized' })
    const c = await client(server)
    await c.secure(server.certs.ca)
    const { result } = await c.scram('juliet', 'r0m30')
    expect(result.is('failure', NS.sasl)).toBe(true)
    expect(conditionOf(result)).toBe('not-authorized')
    server.sessions[0]!.faults = { saslFailure: 'temporary-auth-failure' }
    expect(conditionOf(await c.plain('juliet', 'r0m30'))).toBe('temporary-auth-failure')
    expect(server.sessions[0]!.authenticated).toBe(false)
  })

  it('neverAnswerSasl: <auth/> is read and never answered', async () => {
    const server = await start({ neverAnswerSasl: true })
    const c = await client(server)
    await c.secure(server.certs.ca)
    c.send(
      `<auth xmlns='${NS.sasl}' mechanism='PLAIN'>${Buffer.from('\0juliet\0r0m30').toString('base64')}</auth>`,
    )
    expect(await c.idle(300)).toEqual([])
    expect((await server.waitFor('auth')).mechanism).toBe('PLAIN')
    expect(server.sessions[0]!.authenticated).toBe(false)
  })
})

describe('STARTTLS hostility', () => {
  it('offerStarttls: false strips STARTTLS and offers SASL in plaintext', async () => {
    const server = await start({ offerStarttls: false })
    const c = await client(server)
    const features = await c.openStream()
    expect(features.getChild('starttls', NS.tls)).toBeUndefined()
    expect(features.getChild('mechanisms', NS.sasl)).toBeDefined()
    // A (careless) client that goes on: the server saw its credentials in plaintext.
    expect((await c.plain('juliet', 'r0m30')).is('success', NS.sasl)).toBe(true)
    const session = server.sessions[0]!
    expect(session.tls).toBe(false)
    expect(session.received.map((e) => e.name)).toEqual(['auth'])
  })

  it('dropOnStarttls: the socket closes after <starttls/>, unanswered', async () => {
    const server = await start({ dropOnStarttls: true })
    const c = await client(server)
    await c.openStream()
    c.send(`<starttls xmlns='${NS.tls}'/>`)
    await c.waitClosed()
    expect(c.queue).toEqual([])
    expect((await server.waitFor('fault')).fault).toBe('dropOnStarttls')
  })

  it('silenceAfterProceed: <proceed/>, then the TLS hello is read and never answered', async () => {
    const server = await start({ silenceAfterProceed: true })
    const c = await client(server)
    await c.openStream()
    c.send(`<starttls xmlns='${NS.tls}'/>`)
    expect((await c.next()).is('proceed', NS.tls)).toBe(true)
    expect((await server.waitFor('fault')).fault).toBe('silenceAfterProceed')
    // A TLS ClientHello starts with a handshake record: content type 22, version 3.x.
    const before = c.chunks.length
    c.socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00]))
    const unexpected = await server.waitFor('unexpected-data')
    expect(unexpected).toMatchObject({ when: 'after-starttls' })
    expect(unexpected.data.charCodeAt(0)).toBe(0x16)
    expect(await c.idle(300)).toEqual([])
    expect(c.chunks.length).toBe(before) // not a byte in answer
    expect(c.closed).toBe(false)
    expect(server.sessions[0]!.tls).toBe(false)
  })

  it('offerBind: false: the features after SASL carry no <bind/>', async () => {
    const server = await start({ offerBind: false })
    const c = await client(server)
    await c.secure(server.certs.ca)
    await c.scram('juliet', 'r0m30', 'sha1')
    c.restart()
    const features = await c.openStream()
    expect(features.getChild('bind', NS.bind)).toBeUndefined()
    expect(features.getChild('session', NS.session)).toBeDefined()
    expect((await server.waitFor('fault')).fault).toBe('offerBind')
  })

  it('bindJid: the bind result names another JID', async () => {
    const server = await start({ bindJid: 'mallory@evil.example/x' })
    const c = await client(server)
    expect(await c.login(server.certs.ca, 'juliet', 'r0m30', 'r')).toBe('mallory@evil.example/x')
    expect(server.sessions[0]!.jid?.toString()).toBe('juliet@localhost/r')
    expect((await server.waitFor('fault')).fault).toBe('bindJid')
  })

  it('starttlsFailure: <failure/> and the stream closes; a good client sends nothing else', async () => {
    const server = await start({ starttlsFailure: true })
    const c = await client(server)
    await c.openStream()
    c.send(`<starttls xmlns='${NS.tls}'/>`)
    const failure = await c.next()
    expect(failure.is('failure', NS.tls)).toBe(true)
    await c.waitClosed()
    expect(c.footer).toBe(true)
    expect((await server.waitFor('close')).clean).toBe(true)
    expect(server.sessions[0]!.received.map((e) => e.name)).toEqual(['starttls'])
  })

  it('starttlsFailure: what a bad client sends afterwards in plaintext is recorded', async () => {
    const server = await start({ starttlsFailure: true })
    const c = await client(server)
    c.answerClose = false
    await c.openStream()
    c.send(`<starttls xmlns='${NS.tls}'/>`)
    await c.next()
    c.send(`<auth xmlns='${NS.sasl}' mechanism='PLAIN'>AGp1bGlldAByMG0zMA==</auth>`)
    await server.waitFor('element', (e) => e.element.name === 'auth')
    expect(server.sessions[0]!.authenticated).toBe(false)
    expect(server.log.some((e) => e.type === 'auth')).toBe(false) // recorded, not handled
  })

  it('bytes sent in plaintext between <starttls/> and <proceed/> are reported', async () => {
    const server = await start({ delay: { step: 'starttls', ms: 1500 } })
    const c = await client(server)
    await c.openStream()
    c.send(`<starttls xmlns='${NS.tls}'/>`)
    await server.waitFor('element', (e) => e.element.name === 'starttls')
    c.send("<auth mechanism='PLAIN'/>")
    const unexpected = await server.waitFor('unexpected-data')
    expect(unexpected).toMatchObject({ when: 'after-starttls' })
    expect(unexpected.data).toContain('<auth')
    expect((await c.next()).is('proceed', NS.tls)).toBe(true)
  })
})
