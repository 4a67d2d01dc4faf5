// Stream management (XEP-0198) against Prosody's mod_smacks, with the short hibernation time
// scripts/prosody.mjs configures (smacks_hibernation_time).
import type { Message } from '@core/connection'
import { xml } from '@core/xml'
import { sm } from '@xep/0198-sm'
import { describe, expect, test } from 'vitest'
import { type Client, newClient, prosody, server } from './prosody.js'

function collect(client: Client): string[] {
  const ids: string[] = []
  client.plugins.router.message({ type: 'chat' }, (msg: Message) => {
    ids.push(String(msg.attrs.id))
  })
  return ids
}

async function until(ok: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const chat = (to: string, id: string) =>
  xml('message', { to, id, type: 'chat' }, xml('body', null, id))

describe.skipIf(!prosody)('stream management with Prosody (mod_smacks)', () => {
  test("enables a resumable session; with settle: 'acked', send() resolves on the ack", async () => {
    const alice = newClient('alice', {
      resource: 'sm-enable',
      plugins: [sm.with({ settle: 'acked' })],
    })
    const enabled = alice.hooks.next('sm-enabled')
    await alice.connect()
    expect(await enabled).toMatchObject({ resumable: true })
    expect(alice.plugins.sm.id).toBeTruthy()
    await alice.send(xml('presence'))
    expect(alice.plugins.sm.pending).toBe(0)
    expect(await alice.plugins.sm.requestAck()).toBe(1)
  })

  test('socket destroyed mid-flow, resumed: what was sent during the outage arrives once', async () => {
    const s = server()
    const bob = newClient('bob', { resource: 'sm-rx' })
    const got = collect(bob)
    await bob.connect()
    await bob.send(xml('presence'))
    const alice = newClient('alice', { resource: 'sm-tx', plugins: [sm] })
    await alice.connect()
    const to = `bob@${s.domain}/sm-rx`
    const before = [alice.send(chat(to, 'b1')), alice.send(chat(to, 'b2'))]
    // Abruptly, with stanzas possibly in flight.
    alice.transport?.destroy()
    await alice.hooks.next('disconnected')
    expect(alice.resumable).toBe(true)
    const during = [alice.send(chat(to, 'd1')), alice.send(chat(to, 'd2'))]
    const online = alice.hooks.next('online')
    const started = performance.now()
    await alice.connect()
    const resumeMs = performance.now() - started
    expect(await online).toEqual({ resumed: true })
    await Promise.all([...before, ...during])
    await until(() => got.length >= 4, 'four messages at bob')
    // A moment for any duplicate to show up.
    await alice.plugins.sm.requestAck()
    await bob.plugins.ping.ping()
    expect(got).toEqual(['b1', 'b2', 'd1', 'd2'])
    expect(resumeMs).toBeGreaterThan(0)
    if (process.env.SM_TIMING) console.log(`resume took ${resumeMs.toFixed(1)} ms`)
  })

  test('resume after the session expired: failed, a new session, the held stanzas reported failed', async () => {
    const s = server()
    const bob = newClient('bob', { resource: 'sm-rx2' })
    const got = collect(bob)
    await bob.connect()
    const alice = newClient('alice', { resource: 'sm-exp', plugins: [sm] })
    await alice.connect()
    const firstId = alice.plugins.sm.id
    alice.transport?.destroy()
    await alice.hooks.next('disconnected')
    const held = alice.send(chat(`bob@${s.domain}/sm-rx2`, 'late')).then(
      () => 'delivered',
      (error: unknown) => error,
    )
    const failed: string[] = []
    alice.hooks.on('sm-failed', ({ element }) => {
      failed.push(String(element.attrs.id))
    })
    // Past smacks_hibernation_time: Prosody has destroyed the session.
    await new Promise((r) => setTimeout(r, (s.smacksHibernationTime + 1.5) * 1000))
    const online = alice.hooks.next('online')
    await alice.connect()
    expect(await online).toEqual({ resumed: false })
    expect(await held).toMatchObject({ code: 'not-delivered' })
    expect(failed).toEqual(['late'])
    expect(alice.plugins.sm.enabled).toBe(true)
    expect(alice.plugins.sm.id).not.toBe(firstId)
    await bob.plugins.ping.ping()
    expect(got).toEqual([])
  }, 20_000)

  test('a resume with a previd the server does not know: failed with item-not-found', async () => {
    // A middleware that tampers with the outgoing <resume/> (it runs before stream
    // management's innermost layer), to play a client with a stale session id.
    const { definePlugin } = await import('@core/connection')
    const tamper = definePlugin({
      name: 'tamper',
      setup(ctx) {
        ctx.outbound((c, next) => {
          if (c.element.name === 'resume') c.element.attrs.previd = 'no-such-session'
          return next()
        })
      },
    })
    const alice = newClient('alice', { resource: 'sm-bad', plugins: [sm, tamper] })
    await alice.connect()
    alice.transport?.destroy()
    await alice.hooks.next('disconnected')
    const ended = alice.hooks.next('session-end')
    await alice.connect()
    const { error } = await ended
    expect(error).toMatchObject({ code: 'resume-failed', condition: 'item-not-found' })
    expect(alice.plugins.sm.enabled).toBe(true)
  })
})
