import { resolveSrv } from 'node:dns/promises'
import { TcpError } from './errors.js'
import { isIpLiteral, type TlsMode } from './service.js'

/** One SRV answer, as node:dns returns it (RFC 2782). */
export interface SrvRecord {
  /** The target host; "." means the service is not offered. */
  name: string
  port: number
  priority: number
  weight: number
}

/**
 * Looks up the SRV records of a name such as `_xmpp-client._tcp.example.com`. A lookup
 * without an answer rejects with an error whose `code` is `ENOTFOUND` or `ENODATA`, as
 * node:dns does.
 */
export type SrvResolver = (name: string) => Promise<SrvRecord[]>

/** Where to connect, and how TLS starts there. */
export interface TcpTarget {
  host: string
  port: number
  tls: TlsMode
}

export interface ResolveOptions {
  /** A uniform random number in [0, 1), for the weighted order. Default Math.random. */
  random?: () => number
}

/** The default resolver: node:dns/promises resolveSrv (the system's DNS servers). */
export const systemSrvResolver: SrvResolver = (name) => resolveSrv(name)

/** Ports used when DNS has no SRV answer: RFC 6120 §3.2.2 (5222) and, by custom, 5223. */
export const DEFAULT_PORTS: Readonly<Record<TlsMode, number>> = { starttls: 5222, direct: 5223 }

/**
 * Errors by which node:dns says that it got no answer: none exists (NXDOMAIN, NODATA) or
 * the lookup itself failed. Either way there is nothing to follow, so the fallback applies.
 * Any other error (a bug in an injected resolver, say) is passed on.
 */
const NO_ANSWER = new Set([
  'ENOTFOUND',
  'ENODATA',
  'ESERVFAIL',
  'ETIMEOUT',
  'ECONNREFUSED',
  'EREFUSED',
  'EBADRESP',
  'EFORMERR',
  'ENOTIMP',
])

/**
 * The targets to try, in order, for a host without an explicit port.
 *
 * - RFC 6120 §3.2.1 and XEP-0368 §3: for STARTTLS (`xmpp://`) both `_xmpps-client._tcp`
 *   (direct TLS) and `_xmpp-client._tcp` are looked up and mixed into one set; for direct TLS
 *   (`xmpps://`) only `_xmpps-client._tcp`.
 * - RFC 2782: lowest priority first, then a weighted random order within a priority. A lone
 *   record with target "." means the service is not offered; XEP-0368 §5: for xmpps that
 *   only rules out direct TLS, and it still counts as an answer (no address fallback).
 * - RFC 6120 §3.2.2: only when no lookup had an answer is the host itself tried, on 5222
 *   (STARTTLS) or 5223 (direct TLS). When SRV named targets, only those are tried, even if
 *   they all fail.
 *
 * An IP literal has no SRV records: it is used as is, with the default port.
 */
export async function resolveTargets(
  host: string,
  mode: TlsMode,
  resolver: SrvResolver = systemSrvResolver,
  options: ResolveOptions = {},
): Promise<TcpTarget[]> {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  if (isIpLiteral(bare)) return [{ host: bare, port: DEFAULT_PORTS[mode], tls: mode }]
  const services: [string, TlsMode][] =
    mode === 'direct'
      ? [['_xmpps-client', 'direct']]
      : [
          ['_xmpps-client', 'direct'],
          ['_xmpp-client', 'starttls'],
        ]
  const answers = await Promise.all(
    services.map(async ([service, tls]) => ({
      tls,
      records: await lookup(resolver, `${service}._tcp.${bare}`),
    })),
  )
  let answered = false
  const candidates: (SrvRecord & { tls: TlsMode })[] = []
  for (const { tls, records } of answers) {
    if (records === undefined || records.length === 0) continue
    answered = true
    for (const record of records) {
      // A "." target names no host: skip it (alone, it says the service is not offered).
      if (isRoot(record.name)) continue
      candidates.push({ ...record, name: stripDot(record.name), tls })
    }
  }
  if (!answered) return [{ host: bare, port: DEFAULT_PORTS[mode], tls: mode }]
  if (candidates.length === 0) {
    throw new TcpError(
      'service-unavailable',
      `DNS says that ${bare} offers no XMPP client service (SRV target ".")`,
    )
  }
  return orderSrv(candidates, options.random ?? Math.random).map((record) => ({
    host: record.name,
    port: record.port,
    tls: record.tls,
  }))
}

async function lookup(resolver: SrvResolver, name: string): Promise<SrvRecord[] | undefined> {
  try {
    return await resolver(name)
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code
    if (typeof code === 'string' && NO_ANSWER.has(code)) return undefined
    throw error
  }
}

/**
 * RFC 2782 ordering: ascending priority; within a priority, repeatedly pick a record with
 * probability proportional to its weight (weight-0 records first in the running sum, so
 * they are picked only by a draw of 0 or when nothing else is left).
 */
export function orderSrv<T extends { priority: number; weight: number }>(
  records: readonly T[],
  random: () => number = Math.random,
): T[] {
  const groups = new Map<number, T[]>()
  for (const record of records) {
    const group = groups.get(record.priority)
    if (group) group.push(record)
    else groups.set(record.priority, [record])
  }
  const ordered: T[] = []
  for (const priority of [...groups.keys()].sort((a, b) => a - b)) {
    const group = groups.get(priority) as T[]
    const remaining = [...group.filter((r) => r.weight === 0), ...group.filter((r) => r.weight > 0)]
    while (remaining.length > 0) {
      let total = 0
      for (const record of remaining) total += record.weight
      // A uniform integer in [0, total], inclusive as RFC 2782 asks.
      const draw = Math.min(Math.floor(random() * (total + 1)), total)
      let running = 0
      let index = remaining.length - 1
      for (let i = 0; i < remaining.length; i++) {
        running += (remaining[i] as T).weight
        if (running >= draw) {
          index = i
          break
        }
      }
      ordered.push(remaining.splice(index, 1)[0] as T)
    }
  }
  return ordered
}

function isRoot(name: string): boolean {
  return name === '.' || name === ''
}

function stripDot(name: string): string {
  return name.endsWith('.') ? name.slice(0, -1) : name
}
