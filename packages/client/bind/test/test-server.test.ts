// Bind against @test/server and its faults, with the real transport and SASL.
import { sasl } from '@client/sasl'
import { type AnyPlugin, createConnection } from '@core/connection'
import { ConnectionError } from '@core/errors'
import { type Faults, startTestServer, type TestServer } from '@test/server'
import { starttls, tcp } from '@transport/tcp'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { BindError, bind } from '../src/index.js'

let server: TestServer
beforeAll(async () => {
  server = await startTestServer({ users: { juliet: 'r0m30' } })
})
afterAll(async () => {
  await server.close()
})

/** Logs juliet in against the given faults; resolves with what happened. */
async function login(faults: Faults, plugins: readonly AnyPlugin[] = [bind]) {
  server.faults = { ...faults, once: true }
  const conn = createConnection({
    transport: tcp({ tls: { ca: server.certs.ca } }),
    service: server.service,
    domain: server.domain,
    plugins: [starttls, sasl.with({ username: 'juliet', password: 'r0m30' }), ...plugins],
    timeouts: { negotiation: 2000, close: 200 },
  })
  const error = await conn.connect().then(
    () => undefined,
    (e: unknown) => e,
  )
  const state = conn.state
  const jid = conn.jid
  if (state === 'online') await conn.disconnect()
  return { error, state, jid, session: server.sessions.at(-1) }
}

describe('the bound JID is checked', () => {
  test('the account is bound: online as juliet@localhost/...', async () => {
    const { error, state, jid } = await login({})
    expect(error).toBeUndefined()
    expect(state).toBe('online')
    expect(jid?.bare().toString()).toBe('juliet@localhost')
  })

  test('bound to another account on another domain: BindError, never online', async () => {
    const { error, state, jid, session } = await login({ bindJid: 'mallory@evil.example/x' })
    expect(error).toBeInstanceOf(BindError)
    expect(error).toMatchObject({ code: 'foreign-jid' })
    expect((error as Error).message).toContain('mallory@evil.example/x')
    expect(state).toBe('disconnected')
    expect(jid).toBeUndefined()
    // Nothing was sent after the bind request.
    expect(session?.received.at(-1)?.name).toBe('iq')
  })

  test('bound to another account on the same domain: BindError', async () => {
    const { error, state } = await login({ bindJid: 'mallory@localhost/x' })
    expect(error).toBeInstanceOf(BindError)
    expect(error).toMatchObject({ code: 'foreign-jid' })
    expect(state).toBe('disconnected')
  })

  test('the same account written in another case is the same account', async () => {
    const { error, jid } = await login({ bindJid: 'Juliet@LocalHost/x' })
    expect(error).toBeUndefined()
    expect(jid?.toString()).toBe('juliet@localhost/x')
  })

  test('an account given in the options wins over the SASL identity', async () => {
    const { error } = await login({}, [bind.with({ account: 'romeo@localhost' })])
    expect(error).toBeInstanceOf(BindError)
    expect(error).toMatchObject({ code: 'foreign-jid' })
  })
})

describe('bind is required', () => {
  test('a server that offers no <bind/>: a typed error, never online without a JID', async () => {
    const { error, state, jid, session } = await login({ offerBind: false })
    expect(error).toBeInstanceOf(ConnectionError)
    expect(error).toMatchObject({ code: 'negotiation-failed' })
    expect((error as Error).message).toContain('"bind"')
    expect(state).toBe('disconnected')
    expect(jid).toBeUndefined()
    expect(session?.received.map((e) => e.name)).not.toContain('iq')
  })
})
