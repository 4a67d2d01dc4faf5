// SASL against @test/server and its faults, over the real transport.
import { createConnection } from '@core/connection'
import { SASLError } from '@core/errors'
import { type Faults, startTestServer, type TestServer } from '@test/server'
import { starttls, tcp } from '@transport/tcp'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { NS_SASL, type SASLOptions, sasl } from '../src/index.js'

let server: TestServer
beforeAll(async () => {
  server = await startTestServer({ users: { juliet: 'r0m30' } })
})
afterAll(async () => {
  await server.close()
})

/** Logs juliet in against the given faults; resolves with the error (or undefined). */
async function login(faults: Faults, options: Partial<SASLOptions> = {}) {
  server.faults = { ...faults, once: true }
  const conn = createConnection({
    transport: tcp({ tls: { ca: server.certs.ca } }),
    service: server.service,
    domain: server.domain,
    plugins: [starttls, sasl.with({ username: 'juliet', password: 'r0m30', ...options })],
    timeouts: { negotiation: 2000, close: 200 },
  })
  const error = await conn.connect().then(
    () => undefined,
    (e: unknown) => e,
  )
  if (conn.state === 'online') await conn.disconnect()
  return error as SASLError | undefined
}

/** The server answers `step` with this instead of its own answer. */
const answer = (step: 'auth' | 'response', data: string): Faults => ({
  withhold: step,
  inject: { step, data },
})
const b64 = (s: string) => Buffer.from(s).toString('base64')

describe('server strings do not become conditions unchecked', () => {
  test('a defined <failure/> condition is kept, with its text', async () => {
    const error = await login(
      answer(
        'auth',
        `<failure xmlns='${NS_SASL}'><account-disabled/><text>ask the admin</text></failure>`,
      ),
    )
    expect(error).toBeInstanceOf(SASLError)
    expect(error).toMatchObject({ condition: 'account-disabled', text: 'ask the admin' })
  })

  test('an undefined <failure/> condition becomes the generic not-authorized, its name kept in the message', async () => {
    const error = await login(
      answer('auth', `<failure xmlns='${NS_SASL}'><x-pay-first/><text>pay us</text></failure>`),
    )
    expect(error).toBeInstanceOf(SASLError)
    expect(error).toMatchObject({ condition: 'not-authorized', text: 'pay us' })
    expect(error?.message).toContain('x-pay-first')
  })

  test('a defined condition name in another namespace is not taken', async () => {
    const error = await login(
      answer(
        'auth',
        `<failure xmlns='${NS_SASL}'><account-disabled xmlns='urn:example'/></failure>`,
      ),
    )
    expect(error).toMatchObject({ condition: 'not-authorized' })
  })

  test('SCRAM e= with a defined server-error value (RFC 5802 §7) keeps it', async () => {
    const error = await login(
      answer('response', `<challenge xmlns='${NS_SASL}'>${b64('e=invalid-proof')}</challenge>`),
    )
    expect(error).toBeInstanceOf(SASLError)
    expect(error).toMatchObject({ condition: 'invalid-proof', text: 'invalid-proof' })
  })

  test('SCRAM e= with any other value: other-error, the value kept as text', async () => {
    const error = await login(
      answer(
        'response',
        `<success xmlns='${NS_SASL}'>${b64('e=<script>alert(1)</script>')}</success>`,
      ),
    )
    expect(error).toBeInstanceOf(SASLError)
    expect(error).toMatchObject({ condition: 'other-error', text: '<script>alert(1)</script>' })
  })
})

describe('PLAIN over TLS whose certificate was not verified', () => {
  let plainOnly: TestServer
  beforeAll(async () => {
    plainOnly = await startTestServer({ users: { juliet: 'r0m30' }, mechanisms: ['PLAIN'] })
  })
  afterAll(async () => {
    await plainOnly.close()
  })

  async function plainLogin(
    tls: { insecure?: boolean; ca?: string },
    options: Partial<SASLOptions> = {},
  ) {
    const before = plainOnly.log.filter((e) => e.type === 'auth').length
    const conn = createConnection({
      transport: tcp({ tls }),
      service: plainOnly.service,
      domain: plainOnly.domain,
      plugins: [starttls, sasl.with({ username: 'juliet', password: 'r0m30', ...options })],
      timeouts: { negotiation: 2000, close: 200 },
    })
    const error = await conn.connect().then(
      () => undefined,
      (e: unknown) => e as SASLError,
    )
    const mechanism = conn.plugins.sasl.mechanism
    if (conn.state === 'online') await conn.disconnect()
    const auths = plainOnly.log.filter((e) => e.type === 'auth').length - before
    return { error, mechanism, auths }
  }

  test('refused by default: the password is never sent', async () => {
    const { error, auths } = await plainLogin({ insecure: true })
    expect(error).toBeInstanceOf(SASLError)
    expect(error).toMatchObject({ condition: 'invalid-mechanism' })
    expect(error?.message).toMatch(/PLAIN: refused over TLS whose certificate was not verified/)
    expect(auths).toBe(0)
  })

  test('allowed with allowPlainWithUnverifiedTLS', async () => {
    const { error, mechanism, auths } = await plainLogin(
      { insecure: true },
      { allowPlainWithUnverifiedTLS: true },
    )
    expect(error).toBeUndefined()
    expect(mechanism).toBe('PLAIN')
    expect(auths).toBe(1)
  })

  test('tls.insecure with a certificate that does verify: PLAIN as usual', async () => {
    const { error, mechanism } = await plainLogin({ insecure: true, ca: plainOnly.certs.ca })
    expect(error).toBeUndefined()
    expect(mechanism).toBe('PLAIN')
  })
})
