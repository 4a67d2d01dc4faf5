import { readFileSync } from 'node:fs'
import { SASLError, XMPPError } from '@core/errors'
import { describe, expect, test } from 'vitest'
import {
  authEventsSince,
  codesInChain,
  logMark,
  newClient,
  prosody,
  rawFeatures,
  rejectionOf,
  server,
  sleep,
} from './prosody.js'

describe.skipIf(!prosody)('login against Prosody', () => {
  test('STARTTLS + SCRAM-SHA-1, self-signed certificate accepted with tls.insecure', async () => {
    const s = server()
    const mark = logMark()
    const client = newClient('dave', { resource: 'login-sha1', mechanisms: ['SCRAM-SHA-1'] })
    await client.connect()
    expect(client.state).toBe('online')
    expect(client.jid?.toString()).toBe(`dave@${s.domain}/login-sha1`)
    expect(client.plugins.sasl.mechanism).toBe('SCRAM-SHA-1')
    // The server agrees: one successful authentication of dave, no failure.
    expect(authEventsSince(mark).filter((e) => e.user === 'dave' && e.host === s.domain)).toEqual([
      { outcome: 'auth-success', host: s.domain, user: 'dave', condition: undefined },
    ])
    await client.disconnect()
    expect(client.state).toBe('disconnected')
  })

  test('with no mechanism given, picks SCRAM-SHA-1 over PLAIN on the default host', async () => {
    const features = await rawFeatures(server().domain)
    expect(features.mechanisms).toEqual(expect.arrayContaining(['SCRAM-SHA-1', 'PLAIN']))
    const client = newClient('erin')
    await client.connect()
    expect(client.plugins.sasl.mechanism).toBe('SCRAM-SHA-1')
  })

  test('SCRAM-SHA-256 on the host that offers it', async () => {
    const s = server()
    // Prosody 0.12 keeps one SCRAM hash per account: SHA-1 unless the host sets
    // password_hash = "SHA-256", which scripts/prosody.mjs does for its second host. A
    // server that offers it nowhere fails this test: it is not skipped.
    const main = await rawFeatures(s.domain)
    const sha256 = await rawFeatures(s.sha256Domain)
    expect(main.mechanisms).toContain('SCRAM-SHA-1')
    expect(
      sha256.mechanisms,
      `${s.sha256Domain} should offer SCRAM-SHA-256 (scripts/prosody.mjs sets password_hash = "SHA-256" there)`,
    ).toContain('SCRAM-SHA-256')
    const host = s.sha256Domain
    const mark = logMark()
    const client = newClient('carol', { domain: host, mechanisms: ['SCRAM-SHA-256'] })
    await client.connect()
    expect(client.plugins.sasl.mechanism).toBe('SCRAM-SHA-256')
    expect(client.jid?.bare().toString()).toBe(`carol@${host}`)
    expect(authEventsSince(mark).filter((e) => e.host === host && e.user === 'carol')).toEqual([
      { outcome: 'auth-success', host, user: 'carol', condition: undefined },
    ])
    await client.disconnect()

    // With no mechanism given, the client prefers SCRAM-SHA-256 to PLAIN as well.
    const preferred = newClient('carol', { domain: host })
    await preferred.connect()
    expect(preferred.plugins.sasl.mechanism).toBe('SCRAM-SHA-256')
  })

  test('wrong password: SASLError not-authorized, one attempt, then disconnected', async () => {
    const s = server()
    const wrong = 'not-daves-password-7f3a'
    const mark = logMark()
    const client = newClient('dave', { password: wrong })
    const started = performance.now()
    const err = await rejectionOf(client.connect())
    const took = performance.now() - started
    expect(err).toBeInstanceOf(SASLError)
    expect(err).toMatchObject({ code: 'sasl-error', condition: 'not-authorized' })
    expect(String((err as Error).message)).not.toContain(wrong)
    expect(client.state).toBe('disconnected')
    // No retry loop: give one a chance to show, then count what the server saw.
    await sleep(1000)
    expect(client.state).toBe('disconnected')
    const events = authEventsSince(mark).filter((e) => e.user === 'dave' && e.host === s.domain)
    expect(events).toEqual([
      { outcome: 'auth-failure', host: s.domain, user: 'dave', condition: 'not-authorized' },
    ])
    // One SCRAM exchange on loopback takes milliseconds, not a back-off schedule.
    expect(took).toBeLessThan(5000)
  })

  test("Prosody's certificate verified through tls.ca, not tls.insecure", async () => {
    const s = server()
    // The private Prosody's certificate is self-signed by scripts/prosody.mjs: it is its
    // own CA. Trusting it alone (tls.ca replaces the default roots) verifies the server.
    const client = newClient('alice', { resource: 'ca', tls: { ca: readFileSync(s.certFile) } })
    await client.connect()
    expect(client.state).toBe('online')
    const transport = client.transport as { secure?: boolean; verified?: boolean } | undefined
    expect(transport?.secure).toBe(true)
    expect(transport?.verified).toBe(true)
    expect(client.jid?.toString()).toBe(`alice@${s.domain}/ca`)
  })

  test('self-signed certificate rejected without tls.insecure: typed TLS error, no auth', async () => {
    const s = server()
    const mark = logMark()
    const client = newClient('dave', { tls: {} })
    const err = await rejectionOf(client.connect())
    expect(err).toBeInstanceOf(XMPPError)
    // Node's verdict on the chain is kept in the error or its cause chain.
    expect(codesInChain(err)).toContainEqual(expect.stringMatching(/SELF_SIGNED/))
    expect(String((err as Error).message)).not.toContain(s.users.dave)
    expect(client.state).toBe('disconnected')
    // The credentials never reached the server.
    expect(authEventsSince(mark).filter((e) => e.user === 'dave')).toEqual([])
  })
})
