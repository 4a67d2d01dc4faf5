import { describe, expect, it } from 'vitest'
import { TcpError } from './errors.js'
import { orderSrv, resolveTargets, type SrvRecord, type SrvResolver } from './srv.js'

function dnsError(code: string): Error {
  return Object.assign(new Error(`query failed: ${code}`), { code })
}

/** A resolver from a table; names not in it have no records (ENOTFOUND). */
function fakeResolver(table: Record<string, SrvRecord[] | Error>): SrvResolver & {
  asked: string[]
} {
  const asked: string[] = []
  const resolver = async (name: string) => {
    asked.push(name)
    const answer = table[name]
    if (answer === undefined) throw dnsError('ENOTFOUND')
    if (answer instanceof Error) throw answer
    return answer
  }
  return Object.assign(resolver, { asked })
}

const rec = (name: string, port: number, priority = 0, weight = 0): SrvRecord => ({
  name,
  port,
  priority,
  weight,
})

/** A random source that returns the given values in turn. */
function sequence(...values: number[]): () => number {
  let i = 0
  return () => values[i++ % values.length] as number
}

describe('resolveTargets', () => {
  it('looks up both _xmpps-client and _xmpp-client for STARTTLS, and mixes them by priority', async () => {
    const resolver = fakeResolver({
      '_xmpps-client._tcp.example.com': [rec('tls.example.com', 443, 5)],
      '_xmpp-client._tcp.example.com': [
        rec('c2.example.com', 5222, 10),
        rec('c1.example.com', 5222, 1),
      ],
    })
    const targets = await resolveTargets('example.com', 'starttls', resolver)
    expect(resolver.asked.sort()).toEqual([
      '_xmpp-client._tcp.example.com',
      '_xmpps-client._tcp.example.com',
    ])
    expect(targets).toEqual([
      { host: 'c1.example.com', port: 5222, tls: 'starttls' },
      { host: 'tls.example.com', port: 443, tls: 'direct' },
      { host: 'c2.example.com', port: 5222, tls: 'starttls' },
    ])
  })

  it('looks up only _xmpps-client for direct TLS', async () => {
    const resolver = fakeResolver({
      '_xmpps-client._tcp.example.com': [rec('tls.example.com.', 5223)],
      '_xmpp-client._tcp.example.com': [rec('c.example.com', 5222)],
    })
    expect(await resolveTargets('example.com', 'direct', resolver)).toEqual([
      { host: 'tls.example.com', port: 5223, tls: 'direct' },
    ])
    expect(resolver.asked).toEqual(['_xmpps-client._tcp.example.com'])
  })

  it('falls back to the host on 5222 / 5223 only when there is no SRV answer', async () => {
    const none = fakeResolver({ '_xmpp-client._tcp.example.com': dnsError('ENODATA') })
    expect(await resolveTargets('example.com', 'starttls', none)).toEqual([
      { host: 'example.com', port: 5222, tls: 'starttls' },
    ])
    expect(await resolveTargets('example.com', 'direct', fakeResolver({}))).toEqual([
      { host: 'example.com', port: 5223, tls: 'direct' },
    ])
    // An empty answer is no answer either.
    const empty = fakeResolver({ '_xmpp-client._tcp.example.com': [] })
    expect(await resolveTargets('example.com', 'starttls', empty)).toEqual([
      { host: 'example.com', port: 5222, tls: 'starttls' },
    ])
  })

  it('does not add the fallback when SRV named targets', async () => {
    const resolver = fakeResolver({
      '_xmpp-client._tcp.example.com': [rec('xmpp.example.com', 5269)],
    })
    expect(await resolveTargets('example.com', 'starttls', resolver)).toEqual([
      { host: 'xmpp.example.com', port: 5269, tls: 'starttls' },
    ])
  })

  it('treats a "." target as no service: xmpps "." leaves the xmpp records, without fallback', async () => {
    const resolver = fakeResolver({
      '_xmpps-client._tcp.example.com': [rec('.', 0)],
      '_xmpp-client._tcp.example.com': [rec('xmpp.example.com', 5222)],
    })
    expect(await resolveTargets('example.com', 'starttls', resolver)).toEqual([
      { host: 'xmpp.example.com', port: 5222, tls: 'starttls' },
    ])
  })

  it('fails with service-unavailable when every answer is "."', async () => {
    const both = fakeResolver({
      '_xmpps-client._tcp.example.com': [rec('.', 0)],
      '_xmpp-client._tcp.example.com': [rec('.', 0)],
    })
    await expect(resolveTargets('example.com', 'starttls', both)).rejects.toMatchObject({
      code: 'service-unavailable',
    })
    // xmpps "." and no _xmpp-client answer: still no fallback (XEP-0368 §5).
    const xmpps = fakeResolver({ '_xmpps-client._tcp.example.com': [rec('.', 0)] })
    await expect(resolveTargets('example.com', 'starttls', xmpps)).rejects.toBeInstanceOf(TcpError)
    await expect(resolveTargets('example.com', 'direct', xmpps)).rejects.toMatchObject({
      code: 'service-unavailable',
    })
  })

  it('uses the records of one lookup when the other has no answer', async () => {
    const resolver = fakeResolver({
      '_xmpps-client._tcp.example.com': dnsError('ESERVFAIL'),
      '_xmpp-client._tcp.example.com': [rec('xmpp.example.com', 5222)],
    })
    expect(await resolveTargets('example.com', 'starttls', resolver)).toEqual([
      { host: 'xmpp.example.com', port: 5222, tls: 'starttls' },
    ])
  })

  it('passes on an error that is not a DNS answer', async () => {
    const broken: SrvResolver = async () => {
      throw new TypeError('resolver bug')
    }
    await expect(resolveTargets('example.com', 'starttls', broken)).rejects.toThrow('resolver bug')
  })

  it('does not look up SRV for an IP literal', async () => {
    const resolver = fakeResolver({})
    expect(await resolveTargets('127.0.0.1', 'starttls', resolver)).toEqual([
      { host: '127.0.0.1', port: 5222, tls: 'starttls' },
    ])
    expect(await resolveTargets('::1', 'direct', resolver)).toEqual([
      { host: '::1', port: 5223, tls: 'direct' },
    ])
    expect(resolver.asked).toEqual([])
  })

  it('orders equal priorities by weight with the given random source', async () => {
    const resolver = fakeResolver({
      '_xmpp-client._tcp.example.com': [
        rec('b.example.com', 5222, 0, 10),
        rec('c.example.com', 5222, 0, 30),
        rec('a.example.com', 5222, 0, 0),
        rec('z.example.com', 5222, 1, 100),
      ],
    })
    // Draw 1: 0 of [0, 40] picks the weight-0 record (placed first). Draw 2: 20 of [0, 40]
    // passes b (running sum 10) and picks c (40). Then b alone.
    const targets = await resolveTargets('example.com', 'starttls', resolver, {
      random: sequence(0, 0.5, 0.99),
    })
    expect(targets.map((t) => t.host)).toEqual([
      'a.example.com',
      'c.example.com',
      'b.example.com',
      'z.example.com',
    ])
  })
})

describe('orderSrv (RFC 2782)', () => {
  it('sorts by ascending priority', () => {
    const out = orderSrv([rec('c', 1, 30), rec('a', 1, 0), rec('b', 1, 10)])
    expect(out.map((r) => r.name)).toEqual(['a', 'b', 'c'])
  })

  it('picks records first in proportion to their weight', () => {
    const records = [rec('light', 1, 0, 10), rec('heavy', 1, 0, 30)]
    let heavyFirst = 0
    const runs = 4000
    for (let i = 0; i < runs; i++) {
      if ((orderSrv(records)[0] as SrvRecord).name === 'heavy') heavyFirst++
    }
    // Expected 30/40 = 75% (the draw is inclusive of 0: 31/41 ≈ 75.6%).
    expect(heavyFirst / runs).toBeGreaterThan(0.7)
    expect(heavyFirst / runs).toBeLessThan(0.81)
  })

  it('keeps every record exactly once', () => {
    const records = [rec('a', 1, 2, 5), rec('b', 1, 1, 0), rec('c', 1, 2, 0), rec('d', 1, 1, 7)]
    const out = orderSrv(records)
    expect(out).toHaveLength(4)
    expect(new Set(out)).toEqual(new Set(records))
    expect(out.slice(0, 2).every((r) => r.priority === 1)).toBe(true)
  })
})
