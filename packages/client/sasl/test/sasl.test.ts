import {
  createConnection,
  type HookMap,
  type Transport,
  type TransportFactory,
} from '@core/connection'
import { packetLog } from '@core/packet-log'
import { PluginError, SASLError, TimeoutError } from '@core/errors'
import { MemoryPeer } from '@test/memory-peer'
import { describe, expect, test } from 'vitest'
import { memoryScramCache, NS_SASL, type SASLOptions, sasl } from '../src/index.js'

const SHORT = { connect: 500, negotiation: 500, close: 200, pluginSetup: 500 }
const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64')
const unb64 = (text: string) => Buffer.from(text, 'base64').toString('utf8')
const mechanisms = (...names: string[]) =>
  `<mechanisms xmlns='${NS_SASL}'>${names.map((n) => `<mechanism>${n}</mechanism>`).join('')}</mechanisms>`

/** A MemoryPeer transport that claims to be encrypted, as a TLS transport would. */
function secure(factory: TransportFactory): TransportFactory {
  return () => {
    const inner = factory()
    const transport: Transport = {
      secure: true,
      framing: inner.framing,
      connect: (target, events) => inner.connect(target, events),
      write: (data) => inner.write(data),
      end: () => inner.end(),
      destroy: (error) => inner.destroy(error),
    }
    return transport
  }
}

/** Connects with the sasl plugin and opens the peer's stream with these features. */
async function start(
  options: Partial<SASLOptions>,
  features: string,
  init: { secure?: boolean; negotiation?: number; log?: string[] } = {},
) {
  const peer = new MemoryPeer()
  const plugins = [
    packetLog.with({ enabled: init.log !== undefined, write: (l) => init.log?.push(l) }),
    sasl.with({ username: 'user', password: 'pencil', ...options }),
  ] as const
  const conn = createConnection({
    transport: init.secure ? secure(peer.transport) : peer.transport,
    domain: 'example.com',
    timeouts: { ...SHORT, negotiation: init.negotiation ?? SHORT.negotiation },
    plugins,
  })
  const stanzas: HookMap['stanza'][] = []
  conn.hooks.on('stanza', (s) => {
    stanzas.push(s)
  })
  const connecting = conn.connect()
  // Settled either way, so that a test may look at the outcome later.
  const outcome = connecting.then(
    () => undefined,
    (error: unknown) => error,
  )
  await peer.nextHeader()
  peer.open({ features })
  return { peer, conn, connecting, outcome, stanzas }
}

const headersSent = (peer: MemoryPeer) =>
  peer.written.filter((w) => w.includes('<stream:stream')).length

/** The server side of the restart after success: a new stream with no more features. */
async function restartAndFinish(peer: MemoryPeer, connecting: Promise<void>) {
  peer.restart()
  await peer.nextHeader()
  peer.open({ features: '' })
  await connecting
}

describe('SCRAM through a connection', () => {
  test('RFC 5802 §5 SCRAM-SHA-1 vector, server-final with success', async () => {
    const { peer, conn, connecting } = await start(
      { nonce: () => 'fyko+d2lbbFgONRv9qkxdawL' },
      mechanisms('SCRAM-SHA-1'),
    )
    const auth = await peer.nextElement()
    expect(auth.name).toBe('auth')
    expect(auth.attrs).toMatchObject({ xmlns: NS_SASL, mechanism: 'SCRAM-SHA-1' })
    expect(unb64(auth.getText())).toBe('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL')
    peer.send(
      `<challenge xmlns='${NS_SASL}'>${b64('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096')}</challenge>`,
    )
    const response = await peer.nextElement()
    expect(response.name).toBe('response')
    expect(unb64(response.getText())).toBe(
      'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
    )
    peer.send(`<success xmlns='${NS_SASL}'>${b64('v=rmF9pqV8S7suAoZWja4dJRkFsKQ=')}</success>`)
    await restartAndFinish(peer, connecting)
    expect(conn.state).toBe('online')
    expect(conn.plugins.sasl.mechanism).toBe('SCRAM-SHA-1')
    await conn.disconnect()
  })

  test('RFC 7677 SCRAM-SHA-256 vector, server-final in a challenge then an empty success', async () => {
    const { peer, conn, connecting } = await start(
      { nonce: () => 'rOprNGfwEbeRWgbNEkqO' },
      mechanisms('SCRAM-SHA-256'),
    )
    const auth = await peer.nextElement()
    expect(auth.attrs.mechanism).toBe('SCRAM-SHA-256')
    expect(unb64(auth.getText())).toBe('n,,n=user,r=rOprNGfwEbeRWgbNEkqO')
    peer.send(
      `<challenge xmlns='${NS_SASL}'>${b64('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096')}</challenge>`,
    )
    const response = await peer.nextElement()
    expect(unb64(response.getText())).toBe(
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    )
    peer.send(
      `<challenge xmlns='${NS_SASL}'>${b64('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')}</challenge>`,
    )
    const empty = await peer.nextElement()
    expect(empty.name).toBe('response')
    expect(empty.getText()).toBe('')
    peer.send(`<success xmlns='${NS_SASL}'/>`)
    await restartAndFinish(peer, connecting)
    expect(conn.plugins.sasl.mechanism).toBe('SCRAM-SHA-256')
    await conn.disconnect()
  })

  /** Runs the SHA-1 vector up to the server's final answer, which the test gives. */
  async function upToServerFinal() {
    const run = await start({ nonce: () => 'fyko+d2lbbFgONRv9qkxdawL' }, mechanisms('SCRAM-SHA-1'))
    await run.peer.nextElement()
    run.peer.send(
      `<challenge xmlns='${NS_SASL}'>${b64('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096')}</challenge>`,
    )
    await run.peer.nextElement()
    return run
  }

  test('a wrong server signature aborts the login: no restart, connection closed', async () => {
    const { peer, outcome } = await upToServerFinal()
    peer.send(`<success xmlns='${NS_SASL}'>${b64('v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=')}</success>`)
    const error = await outcome
    expect(error).toBeInstanceOf(SASLError)
    expect(error).toMatchObject({ code: 'sasl-error', condition: 'invalid-server-signature' })
    expect(headersSent(peer)).toBe(1)
    await peer.waitForEnd()
    expect(peer.connected).toBe(false)
  })

  test('a success without a server signature aborts the login', async () => {
    const { peer, outcome } = await upToServerFinal()
    peer.send(`<success xmlns='${NS_SASL}'/>`)
    expect(await outcome).toMatchObject({ condition: 'invalid-server-signature' })
    expect(headersSent(peer)).toBe(1)
    await peer.waitForEnd()
    expect(peer.connected).toBe(false)
  })

  test('a success right after <auth/>, skipping the exchange, aborts the login', async () => {
    const { peer, outcome } = await start({}, mechanisms('SCRAM-SHA-1'))
    await peer.nextElement()
    peer.send(`<success xmlns='${NS_SASL}'/>`)
    expect(await outcome).toMatchObject({ condition: 'invalid-server-signature' })
    expect(headersSent(peer)).toBe(1)
  })

  test('a server nonce that does not extend ours: <abort/> and SASLError', async () => {
    const { peer, outcome } = await start({ nonce: () => 'abc' }, mechanisms('SCRAM-SHA-256'))
    await peer.nextElement()
    peer.send(
      `<challenge xmlns='${NS_SASL}'>${b64('r=xyz123,s=QSXCR+Q6sek8bf92,i=4096')}</challenge>`,
    )
    const error = await outcome
    expect(error).toBeInstanceOf(SASLError)
    expect(error).toMatchObject({ condition: 'invalid-server-message' })
    expect((error as Error).message).toContain('nonce')
    const abort = await peer.nextElement()
    expect(abort.name).toBe('abort')
    expect(abort.attrs.xmlns).toBe(NS_SASL)
  })

  test.each([
    [4095, {}, 'fewer than the minimum'],
    [600_001, {}, 'more than the maximum'],
    [10_000, { maxIterations: 9_999 }, 'more than the maximum'],
    [5_000, { minIterations: 8_192 }, 'fewer than the minimum'],
  ])('i=%d is refused %o', async (iterations, options, message) => {
    const { peer, outcome } = await start(
      { nonce: () => 'abc', ...options },
      mechanisms('SCRAM-SHA-256'),
    )
    await peer.nextElement()
    peer.send(
      `<challenge xmlns='${NS_SASL}'>${b64(`r=abcdef,s=QSXCR+Q6sek8bf92,i=${iterations}`)}</challenge>`,
    )
    const error = await outcome
    expect(error).toMatchObject({ code: 'sasl-error', condition: 'invalid-server-message' })
    expect((error as Error).message).toContain(message)
  })

  test('a challenge that is not base64 is refused', async () => {
    const { peer, outcome } = await start({}, mechanisms('SCRAM-SHA-256'))
    await peer.nextElement()
    peer.send(`<challenge xmlns='${NS_SASL}'>not base64!</challenge>`)
    expect(await outcome).toMatchObject({ condition: 'incorrect-encoding' })
  })
})

describe('mechanism choice', () => {
  test.each([
    [['PLAIN', 'SCRAM-SHA-1', 'SCRAM-SHA-256'], undefined, 'SCRAM-SHA-256'],
    [['PLAIN', 'SCRAM-SHA-1'], undefined, 'SCRAM-SHA-1'],
    [['SCRAM-SHA-1', 'SCRAM-SHA-256'], ['SCRAM-SHA-1', 'SCRAM-SHA-256'], 'SCRAM-SHA-1'],
    [['X-OAUTH2', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-1'], undefined, 'SCRAM-SHA-1'],
  ])('offered %j, preferred %j: %s', async (offered, preferred, expected) => {
    const { peer, conn } = await start(
      preferred ? { mechanisms: preferred } : {},
      mechanisms(...offered),
      { secure: true },
    )
    const auth = await peer.nextElement()
    expect(auth.attrs.mechanism).toBe(expected)
    await conn.disconnect()
  })

  test('PLAIN is refused without TLS: SASLError invalid-mechanism saying why, nothing sent', async () => {
    const { peer, outcome } = await start({}, mechanisms('PLAIN', 'DIGEST-MD5'))
    const error = await outcome
    expect(error).toBeInstanceOf(SASLError)
    expect(error).toMatchObject({ condition: 'invalid-mechanism' })
    const message = (error as Error).message
    expect(message).toContain('PLAIN: refused without TLS')
    expect(message).toContain('DIGEST-MD5: not supported')
    expect(peer.written.join('')).not.toContain('<auth')
    expect(message).not.toContain('pencil')
  })

  test('a mechanism left out of the options is not used', async () => {
    const { outcome } = await start(
      { mechanisms: ['SCRAM-SHA-256'] },
      mechanisms('SCRAM-SHA-1', 'PLAIN'),
      { secure: true },
    )
    const error = await outcome
    expect(error).toMatchObject({ condition: 'invalid-mechanism' })
    expect((error as Error).message).toContain('SCRAM-SHA-1: not in options.mechanisms')
  })

  test('PLAIN without TLS when allowed: authzid NUL user NUL password', async () => {
    const { peer, conn, connecting } = await start(
      { allowPlainWithoutTLS: true },
      mechanisms('PLAIN'),
    )
    const auth = await peer.nextElement()
    expect(auth.attrs.mechanism).toBe('PLAIN')
    expect(unb64(auth.getText())).toBe('\0user\0pencil')
    peer.send(`<success xmlns='${NS_SASL}'/>`)
    await restartAndFinish(peer, connecting)
    expect(conn.plugins.sasl.mechanism).toBe('PLAIN')
    await conn.disconnect()
  })

  test('PLAIN over TLS, with an authzid, from credentials(); the log shows no secret', async () => {
    const log: string[] = []
    let calls = 0
    const { peer, conn, connecting } = await start(
      {
        username: undefined,
        password: undefined,
        credentials: async () => {
          calls++
          return { username: 'juliet', password: 's3cr3t-\u00A0pw' }
        },
        authzid: 'romeo@example.com',
      },
      mechanisms('PLAIN'),
      { secure: true, log },
    )
    const auth = await peer.nextElement()
    // SASLprep maps the no-break space to a space.
    expect(unb64(auth.getText())).toBe('romeo@example.com\0juliet\0s3cr3t- pw')
    peer.send(`<success xmlns='${NS_SASL}'/>`)
    await restartAndFinish(peer, connecting)
    expect(calls).toBe(1)
    const all = log.join('\n')
    expect(all).toContain('mechanism="PLAIN"')
    expect(all).not.toContain(auth.getText())
    expect(all).not.toContain('s3cr3t')
    await conn.disconnect()
  })
})

describe('failures and hostile servers', () => {
  test('<failure><not-authorized/><text/></failure> is a SASLError with condition and text', async () => {
    const { peer, outcome } = await start({}, mechanisms('SCRAM-SHA-256'))
    await peer.nextElement()
    peer.send(
      `<failure xmlns='${NS_SASL}'><not-authorized/><text xml:lang='en'>Invalid username or password</text></failure>`,
    )
    const error = await outcome
    expect(error).toBeInstanceOf(SASLError)
    expect(error).toMatchObject({
      code: 'sasl-error',
      condition: 'not-authorized',
      text: 'Invalid username or password',
    })
    expect((error as Error).message).not.toContain('pencil')
    await peer.waitForEnd()
    expect(peer.connected).toBe(false)
  })

  test('with scramCache, a login keeps the salted password and a <failure/> after using it forgets it', async () => {
    const scramCache = memoryScramCache()
    const key = {
      mechanism: 'SCRAM-SHA-1',
      username: 'user',
      salt: 'QSXCR+Q6sek8bf92',
      iterations: 4096,
    }
    const serverFirst = `<challenge xmlns='${NS_SASL}'>${b64('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096')}</challenge>`
    const proof =
      'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts='
    const options = { nonce: () => 'fyko+d2lbbFgONRv9qkxdawL', scramCache }
    const first = await start(options, mechanisms('SCRAM-SHA-1'))
    await first.peer.nextElement()
    first.peer.send(serverFirst)
    expect(unb64((await first.peer.nextElement()).getText())).toBe(proof)
    first.peer.send(
      `<success xmlns='${NS_SASL}'>${b64('v=rmF9pqV8S7suAoZWja4dJRkFsKQ=')}</success>`,
    )
    await restartAndFinish(first.peer, first.connecting)
    await first.conn.disconnect()
    expect(await scramCache.get(key, 'pencil')).toHaveLength(20)

    const second = await start(options, mechanisms('SCRAM-SHA-1'))
    await second.peer.nextElement()
    second.peer.send(serverFirst)
    expect(unb64((await second.peer.nextElement()).getText())).toBe(proof)
    second.peer.send(`<failure xmlns='${NS_SASL}'><not-authorized/></failure>`)
    expect(await second.outcome).toMatchObject({ condition: 'not-authorized' })
    expect(await scramCache.get(key, 'pencil')).toBeUndefined()
  })

  test('a failure in answer to a response (after the first challenge) is reported too', async () => {
    const { peer, outcome } = await start({ nonce: () => 'abc' }, mechanisms('SCRAM-SHA-1'))
    await peer.nextElement()
    peer.send(
      `<challenge xmlns='${NS_SASL}'>${b64('r=abcdef,s=QSXCR+Q6sek8bf92,i=4096')}</challenge>`,
    )
    await peer.nextElement()
    peer.send(`<failure xmlns='${NS_SASL}'><account-disabled/></failure>`)
    expect(await outcome).toMatchObject({ condition: 'account-disabled', text: undefined })
  })

  test('a server that never answers: TimeoutError and the connection closes', async () => {
    const { peer, outcome } = await start({}, mechanisms('SCRAM-SHA-256'), { negotiation: 100 })
    expect((await peer.nextElement()).name).toBe('auth')
    const error = await outcome
    expect(error).toBeInstanceOf(TimeoutError)
    expect(error).toMatchObject({ code: 'timeout' })
    await peer.waitForEnd()
    expect(peer.connected).toBe(false)
  })

  test('bytes after <success/> in the same chunk are discarded', async () => {
    const { peer, conn, connecting, stanzas } = await start(
      { allowPlainWithoutTLS: true },
      mechanisms('PLAIN'),
    )
    await peer.nextElement()
    peer.send(
      `<success xmlns='${NS_SASL}'/><message from='evil@example.com' to='user@example.com'><body>injected</body></message>`,
    )
    await restartAndFinish(peer, connecting)
    // Something the server sends after the restart does arrive: only the injection is gone.
    const received = conn.hooks.next('stanza')
    peer.send("<message from='ok@example.com' id='after'/>")
    expect((await received).element.attrs.id).toBe('after')
    expect(stanzas.map((s) => s.element.attrs.from)).toEqual(['ok@example.com'])
    await conn.disconnect()
  })

  test('even a stream error after <success/> in the same chunk is not acted upon', async () => {
    const { peer, conn, connecting } = await start(
      { allowPlainWithoutTLS: true },
      mechanisms('PLAIN'),
    )
    await peer.nextElement()
    peer.send(
      `<success xmlns='${NS_SASL}'/><stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`,
    )
    await restartAndFinish(peer, connecting)
    expect(conn.state).toBe('online')
    await conn.disconnect()
  })

  test('no <mechanisms/> offered: the client does not go online unauthenticated', async () => {
    const { peer, conn, connecting } = await start({}, '')
    await expect(connecting).rejects.toMatchObject({ code: 'negotiation-failed' })
    expect(peer.written.join('')).not.toContain('<auth')
    expect(conn.plugins.sasl.mechanism).toBeUndefined()
    expect(conn.state).toBe('disconnected')
  })

  test('credentials() that throws fails the login with a typed error', async () => {
    const { outcome } = await start(
      {
        credentials: () => {
          throw new Error('vault locked')
        },
      },
      mechanisms('SCRAM-SHA-256'),
    )
    expect(await outcome).toMatchObject({ code: 'sasl-credentials' })
  })

  test('a password SASLprep refuses fails with code saslprep, without the password', async () => {
    const { peer, outcome } = await start(
      { password: 'bad\u0007pass' },
      mechanisms('SCRAM-SHA-256'),
    )
    const error = await outcome
    expect(error).toMatchObject({ code: 'saslprep', table: 'C.2.1' })
    expect((error as Error).message).not.toContain('bad')
    expect(peer.written.join('')).not.toContain('<auth')
  })
})

describe('options', () => {
  const make = (options: Partial<SASLOptions>) =>
    createConnection({
      transport: new MemoryPeer().transport,
      domain: 'example.com',
      plugins: [sasl.with(options)],
    })

  test.each([
    [{ username: 'u' }, 'username` and `password`'],
    [{ username: 'u', password: 'p', mechanisms: ['DIGEST-MD5'] }, 'unsupported mechanism'],
    [{ username: 'u', password: 'p', mechanisms: [] }, 'empty'],
    [{ username: 'u', password: 'p', minIterations: 0 }, 'minIterations'],
    [{ username: 'u', password: 'p', minIterations: 10, maxIterations: 9 }, 'maxIterations'],
    [{ username: 'u', password: 'p', scramCache: { get: () => undefined } }, 'scramCache'],
  ])('%o is refused at setup', (options, message) => {
    let error: unknown
    try {
      make(options as Partial<SASLOptions>)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(PluginError)
    expect(error).toMatchObject({ code: 'setup-failed' })
    expect((error as Error).message).toContain(message)
  })
})
