import { SASLError, StanzaError, StreamError, TimeoutError, XMPPError } from '@core/errors'
import { xml } from '@core/xml'
import { type Faults, startTestServer, type Step, type TestServer } from '@test/server'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createClient } from '../src/index.js'

const USERS = { alice: 'wonder land', bob: 'builder' }
let server: TestServer

beforeAll(async () => {
  server = await startTestServer({ users: USERS })
})
afterAll(async () => {
  await server.close()
})

const SHORT = { connect: 2000, negotiation: 1000, close: 500 }

function client(
  user: keyof typeof USERS,
  options: Partial<Parameters<typeof createClient>[0]> = {},
) {
  return createClient({
    service: server.service,
    jid: `${user}@${server.domain}`,
    password: USERS[user],
    tls: { ca: server.certs.ca },
    timeouts: SHORT,
    ...options,
  })
}

/** Runs a login against the given faults; returns the error and how long it took. */
async function failingLogin(
  faults: Faults,
  options: Partial<Parameters<typeof createClient>[0]> = {},
) {
  server.faults = { ...faults, once: true }
  const c = client('alice', options)
  const started = Date.now()
  // A hang guard well below the vitest timeout: a login that never ends fails here.
  let guard: ReturnType<typeof setTimeout> | undefined
  const error = await Promise.race([
    c.connect().then(
      () => undefined,
      (e: unknown) => e,
    ),
    new Promise((resolve) => {
      guard = setTimeout(() => resolve(new Error('connect() still pending after 8 s')), 8000)
    }),
  ])
  clearTimeout(guard)
  return { error: error as XMPPError | undefined, elapsed: Date.now() - started, client: c }
}

describe('login against the in-process server', () => {
  test('STARTTLS + SCRAM-SHA-256 by preference, bound JID, ping, message to self', async () => {
    const c = client('alice', { resource: 'desk' })
    await c.connect()
    expect(c.transport?.secure).toBe(true)
    expect(c.plugins.sasl.mechanism).toBe('SCRAM-SHA-256')
    expect(c.jid?.toString()).toBe(`alice@${server.domain}/desk`)
    // The ping reaches the server, and the round trip it reports includes the time the
    // server took: its answer is held back 200 ms.
    const session = server.sessions.find((s) => c.jid !== undefined && s.jid?.equals(c.jid))
    if (!session) throw new Error('no server session for the client')
    const pings = () => session.received.filter((e) => e.getChild('ping', 'urn:xmpp:ping')).length
    session.faults = { delay: { step: 'iq', ms: 200 } }
    const rtt = await c.plugins.ping.ping()
    session.faults = {}
    expect(pings()).toBe(1)
    expect(rtt).toBeGreaterThanOrEqual(190)
    const got = new Promise<string | null>((resolve) => {
      c.plugins.router.message({ child: 'body' }, (msg) => resolve(msg.getChildText('body')))
    })
    await c.send(xml('presence'))
    await c.send(
      xml('message', { to: c.jid?.toString(), type: 'chat' }, xml('body', null, 'note to self')),
    )
    expect(await got).toBe('note to self')
    await c.disconnect()
    expect(c.state).toBe('disconnected')
  })

  test('tls.extraCa: the test CA on top of the default roots verifies the server', async () => {
    const c = client('alice', { tls: { extraCa: server.certs.ca } })
    await c.connect()
    expect(c.transport?.secure).toBe(true)
    await c.disconnect()
  })

  test('SCRAM-SHA-1 when asked for', async () => {
    const c = client('alice', { mechanisms: ['SCRAM-SHA-1'] })
    await c.connect()
    expect(c.plugins.sasl.mechanism).toBe('SCRAM-SHA-1')
    await c.disconnect()
  })

  test('two clients exchange messages', async () => {
    const a = client('alice')
    const b = client('bob')
    await Promise.all([a.connect(), b.connect()])
    const atBob = new Promise<string>((resolve) => {
      b.plugins.router.message({ type: 'chat' }, (msg) =>
        resolve(`${msg.attrs.from}: ${msg.getChildText('body')}`),
      )
    })
    await a.send(
      xml('message', { to: b.jid?.toString(), type: 'chat' }, xml('body', null, 'hi bob')),
    )
    expect(await atBob).toBe(`${a.jid}: hi bob`)
    await Promise.all([a.disconnect(), b.disconnect()])
  })

  test('an unknown iq get addressed to us is answered service-unavailable', async () => {
    const a = client('alice')
    const b = client('bob')
    await Promise.all([a.connect(), b.connect()])
    const request = b.plugins.iq.request(
      xml(
        'iq',
        { type: 'get', to: a.jid?.toString() },
        xml('query', { xmlns: 'urn:example:unknown' }),
      ),
    )
    const error = await request.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(StanzaError)
    expect(error).toMatchObject({ condition: 'service-unavailable', type: 'cancel' })
    await Promise.all([a.disconnect(), b.disconnect()])
  })

  test('the debug log shows the exchange without the password or SASL payloads', async () => {
    const lines: string[] = []
    const c = client('alice', { debug: (line) => lines.push(line) })
    await c.connect()
    await c.disconnect()
    const log = lines.join('\n')
    expect(log).toContain('<starttls')
    expect(log).toContain('[redacted]')
    expect(log).not.toContain(USERS.alice)
    expect(log).not.toContain(Buffer.from(`\0alice\0${USERS.alice}`).toString('base64'))
  })

  test('a wrong password gives SASLError not-authorized, once', async () => {
    const auths: unknown[] = []
    const off = server.on('step', (event) => {
      if (event.step === 'auth') auths.push(event)
    })
    const c = client('alice', { password: 'wrong' })
    const error = await c.connect().catch((e: unknown) => e)
    off()
    expect(error).toBeInstanceOf(SASLError)
    expect(error).toMatchObject({ condition: 'not-authorized', code: 'sasl-error' })
    expect(String((error as Error).message)).not.toContain('wrong')
    expect(auths).toHaveLength(1)
    expect(c.state).toBe('disconnected')
  })
})

describe('PLAIN and certificates', () => {
  test('PLAIN over TLS whose certificate was not verified: refused unless opted in', async () => {
    const plainOnly = await startTestServer({ users: USERS, mechanisms: ['PLAIN'] })
    try {
      const options = {
        service: plainOnly.service,
        jid: `alice@${plainOnly.domain}`,
        password: USERS.alice,
        tls: { insecure: true },
        timeouts: SHORT,
      }
      const refused = await createClient(options)
        .connect()
        .catch((e: unknown) => e)
      expect(refused).toBeInstanceOf(SASLError)
      expect(refused).toMatchObject({ condition: 'invalid-mechanism' })
      expect(plainOnly.log.some((e) => e.type === 'auth')).toBe(false)

      const allowed = createClient({ ...options, allowPlainWithUnverifiedTLS: true })
      await allowed.connect()
      expect(allowed.plugins.sasl.mechanism).toBe('PLAIN')
      await allowed.disconnect()
    } finally {
      await plainOnly.close()
    }
  })
})

describe('hostile or broken servers (fault injection)', () => {
  test('a <success/> whose server signature does not verify', async () => {
    const { error, client: c } = await failingLogin({ badServerSignature: true })
    expect(error).toBeInstanceOf(SASLError)
    expect(error).toMatchObject({ condition: 'invalid-server-signature' })
    expect(c.state).toBe('disconnected')
  })

  test('a <success/> without a server signature', async () => {
    const { error } = await failingLogin({ omitServerSignature: true })
    expect(error).toBeInstanceOf(SASLError)
    expect(error).toMatchObject({ condition: 'invalid-server-signature' })
  })

  test('a server that never offers STARTTLS: no plaintext login', async () => {
    const { error, client: c } = await failingLogin({ offerStarttls: false })
    expect(error).toMatchObject({ code: 'tls-required' })
    expect(error).toBeInstanceOf(XMPPError)
    expect(c.state).toBe('disconnected')
    expect(c.plugins.sasl.mechanism).toBeUndefined()
  })

  test('a server that drops the connection after offering STARTTLS', async () => {
    const { error, elapsed } = await failingLogin({ dropOnStarttls: true })
    expect(error).toBeInstanceOf(XMPPError)
    expect(error).toMatchObject({ code: 'starttls-failed' })
    expect(elapsed).toBeLessThan(3000)
  })

  test('a server that answers <starttls/> with <failure/>', async () => {
    const { error } = await failingLogin({ starttlsFailure: true })
    expect(error).toMatchObject({ code: 'starttls-failed' })
  })

  test('<failure><not-authorized/></failure>', async () => {
    const { error } = await failingLogin({ saslFailure: 'not-authorized' })
    expect(error).toBeInstanceOf(SASLError)
    expect(error).toMatchObject({ condition: 'not-authorized' })
  })

  test('a server that never answers the SASL exchange', async () => {
    const { error, elapsed, client: c } = await failingLogin({ neverAnswerSasl: true })
    expect(error).toMatchObject({ code: 'timeout' })
    expect(elapsed).toBeLessThan(3000)
    expect(c.state).toBe('disconnected')
  })

  test('proceed, then silence: the TLS handshake ends within the negotiation timeout', async () => {
    const { error, client: c } = await failingLogin({ silenceAfterProceed: true })
    expect(error).toBeInstanceOf(TimeoutError)
    expect(error?.message).toMatch(/TLS handshake .* within 1000 ms/)
    expect(c.state).toBe('disconnected')
  })

  const unanswered: [Step, RegExp][] = [
    ['header', /stream header/],
    ['starttls', /<starttls\/>/],
    ['auth', /SASL <auth\/> \(SCRAM-SHA-256\)/],
    ['response', /SASL <response\/> \(SCRAM-SHA-256\)/],
    ['bind', /resource binding/],
  ]
  for (const [step, named] of unanswered) {
    test(`a step never answered ("${step}"): a TimeoutError that names it`, async () => {
      const { error, client: c } = await failingLogin({ withhold: step })
      expect(error).toBeInstanceOf(TimeoutError)
      expect(error?.message).toMatch(named)
      expect(c.state).toBe('disconnected')
    })
  }

  const steps: Step[] = [
    'connect',
    'header',
    'features',
    'starttls',
    'tls',
    'auth',
    'response',
    'bind',
  ]
  for (const step of steps) {
    test(`the server closes the socket at step "${step}"`, async () => {
      const { error, elapsed, client: c } = await failingLogin({ closeAtStep: step })
      expect(error).toBeInstanceOf(XMPPError)
      expect(elapsed).toBeLessThan(3000)
      expect(c.state).toBe('disconnected')
      expect(c.transport).toBeUndefined()
    })
  }

  test('restricted XML from the server ends in a StreamError and a closed stream', async () => {
    const { error } = await failingLogin({ inject: { step: 'features', data: '<!-- hi -->' } })
    expect(error).toBeInstanceOf(StreamError)
    expect(error).toMatchObject({ condition: 'restricted-xml' })
  })
})
