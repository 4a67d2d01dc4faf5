import { readFileSync, statSync } from 'node:fs'
import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { createClient } from '@client/preset'
import { afterEach, inject } from 'vitest'

/** What scripts/prosody.mjs writes to .prosody/state.json. */
export interface ProsodyState {
  version: string
  pid: number
  dir: string
  configFile: string
  logFile: string
  host: string
  /** The main virtual host: accounts store SCRAM-SHA-1 keys (Prosody's default). */
  domain: string
  /** A second virtual host whose accounts store SCRAM-SHA-256 keys. */
  sha256Domain: string
  ports: { c2s: number; c2sDirectTls: number; http: number; https: number; component: number }
  websocketUrl: string
  secureWebsocketUrl: string
  /** user name -> password, registered on both virtual hosts. */
  users: Record<string, string>
  component: { domain: string; secret: string; port: number }
  /** The server's self-signed certificate (CN and SAN localhost, *.localhost, 127.0.0.1). */
  certFile: string
  smacksHibernationTime: number
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** null when Prosody is missing outside CI (the suite is skipped). */
    prosody: ProsodyState | null
  }
}

/** The running server, or null when the suite is skipped (never in CI: setup fails there). */
export const prosody: ProsodyState | null = inject('prosody')

export function server(): ProsodyState {
  if (!prosody) throw new Error('no Prosody for this run (see the warning from global-setup)')
  return prosody
}

export type Client = ReturnType<typeof createClient>
export type ClientOptions = Parameters<typeof createClient>[0]

const clients: Client[] = []

// Every client a test made is offline before the next test starts.
afterEach(async () => {
  const open = clients.splice(0).filter((c) => c.state !== 'disconnected')
  await Promise.all(open.map((c) => c.disconnect()))
})

/**
 * A client for `user` on the main host (or `domain`), over c2s with STARTTLS, accepting the
 * server's self-signed certificate. `overrides` replace any option.
 */
export function newClient(
  user: string,
  overrides: Partial<ClientOptions> & { domain?: string } = {},
): Client {
  const s = server()
  const { domain = s.domain, ...rest } = overrides
  const password = s.users[user]
  if (password === undefined) throw new Error(`no test user ${user}`)
  const client = createClient({
    service: `xmpp://${s.host}:${s.ports.c2s}`,
    jid: `${user}@${domain}`,
    password,
    tls: { insecure: true },
    ...rest,
  })
  clients.push(client)
  return client
}

/** Resolves with the rejection of `promise`; fails when it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection, but the promise resolved')
}

/** `code` of the error and of every error in its `cause` chain. */
export function codesInChain(err: unknown): string[] {
  const codes: string[] = []
  let current: unknown = err
  for (let depth = 0; current instanceof Error && depth < 10; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === 'string') codes.push(code)
    current = current.cause
  }
  return codes
}

// ---------------------------------------------------------------------------------------------
// Raw streams: what the server offers, read without the framework.

function streamHeader(domain: string): string {
  return (
    `<?xml version='1.0'?><stream:stream to='${domain}' version='1.0' xml:lang='en' ` +
    `xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`
  )
}

/** Reads from `socket` until the text read so far matches `pattern`. */
function readUntil(socket: Socket | TLSSocket, pattern: RegExp, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const timer = setTimeout(
      () => done(new Error(`timed out waiting for ${pattern}: ${text}`)),
      timeoutMs,
    )
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8')
      if (pattern.test(text)) done()
    }
    const onError = (err: Error) => done(err)
    const onClose = () => done(new Error(`closed while waiting for ${pattern}: ${text}`))
    function done(err?: Error) {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('error', onError)
      socket.off('close', onClose)
      if (err) reject(err)
      else resolve(text)
    }
    socket.on('data', onData)
    socket.once('error', onError)
    socket.once('close', onClose)
  })
}

const FEATURES_END = /<\/stream:features>|<stream:features\s*\/>/

function secureConnect(socket: TLSSocket): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    socket.once('secureConnect', () => resolve(socket))
    socket.once('error', reject)
  })
}

export interface RawFeatures {
  /** Features on the plain stream (RFC 6120 §5.4.1: STARTTLS first). */
  plain: string
  /** Features on the stream restarted over TLS (§5.4.3.3). */
  secure: string
  /** SASL mechanisms offered over TLS (§6.4.1). */
  mechanisms: string[]
  /** TLS protocol negotiated, e.g. TLSv1.3. */
  protocol: string | null
}

/**
 * Opens a c2s stream to `domain`, negotiates STARTTLS by hand, verifying the certificate
 * against the server's own (`ca`), and returns the features before and after TLS.
 */
export async function rawFeatures(domain: string): Promise<RawFeatures> {
  const s = server()
  const socket = netConnect({ host: s.host, port: s.ports.c2s })
  try {
    socket.write(streamHeader(domain))
    const plain = await readUntil(socket, FEATURES_END)
    socket.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    await readUntil(socket, /<proceed[^>]*\/>/)
    const tls = await secureConnect(
      tlsConnect({ socket, servername: 'localhost', ca: readFileSync(s.certFile) }),
    )
    try {
      tls.write(streamHeader(domain))
      const secure = await readUntil(tls, FEATURES_END)
      return { plain, secure, mechanisms: mechanismsIn(secure), protocol: tls.getProtocol() }
    } finally {
      tls.end('</stream:stream>')
    }
  } finally {
    socket.destroy()
  }
}

/** The features on the direct TLS port (XEP-0368), certificate verified against `ca`. */
export async function rawDirectTlsFeatures(domain: string): Promise<string> {
  const s = server()
  const tls = await secureConnect(
    tlsConnect({
      host: s.host,
      port: s.ports.c2sDirectTls,
      servername: 'localhost',
      ca: readFileSync(s.certFile),
      ALPNProtocols: ['xmpp-client'],
    }),
  )
  try {
    tls.write(streamHeader(domain))
    return await readUntil(tls, FEATURES_END)
  } finally {
    tls.destroy()
  }
}

export function mechanismsIn(features: string): string[] {
  return [...features.matchAll(/<mechanism>([^<]+)<\/mechanism>/g)].map((m) => m[1] ?? '')
}

// ---------------------------------------------------------------------------------------------
// What the server saw: the interop_audit module logs one line per SASL outcome.

export interface AuthEvent {
  outcome: 'auth-success' | 'auth-failure'
  host: string
  user: string
  condition: string | undefined
}

/** Current end of the server log: pass it to authEventsSince() later. */
export function logMark(): number {
  return statSync(server().logFile).size
}

export function authEventsSince(mark: number): AuthEvent[] {
  const text = readFileSync(server().logFile).subarray(mark).toString('utf8')
  const events: AuthEvent[] = []
  for (const m of text.matchAll(
    /interop-audit (auth-success|auth-failure) host=(\S+) user=(\S+)(?: condition=(\S+))?/g,
  )) {
    events.push({
      outcome: m[1] as AuthEvent['outcome'],
      host: m[2] ?? '',
      user: m[3] ?? '',
      condition: m[4],
    })
  }
  return events
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
