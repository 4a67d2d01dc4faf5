import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { createSecureContext, type SecureContext } from 'node:tls'
import { JID } from '@core/jid'
import { serialize, type StreamParserOptions, type xml } from '@core/xml'
import { testCerts } from './certs.js'
import { type ComponentHost, ComponentSession } from './component-session.js'
import { TestServerError } from './errors.js'
import type { ServerEvent, ServerEventMap, ServerEventName, ServerEventOf } from './events.js'
import type { Faults } from './faults.js'
import { saslprep } from './saslprep.js'
import type { SmRecord, SmServerOptions } from './stream-management.js'
import { deriveScramCredentials, type ScramCredentials, SCRAM_MECHANISMS } from './scram.js'
import {
  type Interceptor,
  Session,
  type SessionHost,
  type TestSession,
  type UserRecord,
} from './session.js'
import { startWebSocketFront, type WebSocketFront } from './websocket-front.js'

type Element = ReturnType<typeof xml>

export interface TestServerOptions {
  /** The XMPP domain served. Default 'localhost'. */
  domain?: string
  /** Accounts: user name -> password. SCRAM data is derived from them at start. */
  users?: Readonly<Record<string, string>>
  /**
   * The certificate for STARTTLS (PEM), with the CA that signed it for `server.certs.ca`.
   * Default: the bundled test certificate. `false`: STARTTLS is not offered.
   */
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string } | false
  /**
   * SASL mechanisms offered, in this order. Default ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'].
   * Implemented: PLAIN, SCRAM-SHA-1, SCRAM-SHA-256, SCRAM-SHA-512. Other names are offered
   * all the same (to test a client's choice) and fail with invalid-mechanism when chosen.
   */
  mechanisms?: readonly string[]
  /** SASL only after STARTTLS. Default true (false when `tls` is false). */
  requireTls?: boolean
  /** SCRAM iteration count. Default 4096. */
  scramIterations?: number
  /** Faults for the sessions to come; also settable later through `server.faults`. */
  faults?: Faults
  /**
   * TLS from the first byte (XEP-0368 direct TLS) instead of STARTTLS: `service` is then
   * `xmpps://127.0.0.1:port`. Default false. Needs `tls`.
   */
  directTls?: boolean
  /** Port on 127.0.0.1. Default 0: any free port. */
  port?: number
  /** Reader limits (RFC 6120 §13.12); over them the session ends with policy-violation. */
  limits?: StreamParserOptions
  /**
   * External components (XEP-0114) it accepts, domain -> shared secret: they connect to
   * `componentService` (a port of their own); stanzas route between them and clients.
   */
  components?: Readonly<Record<string, string>>
  /**
   * Stream management (XEP-0198): offered after authentication unless `false`. Default: on,
   * with a 30 s hibernation.
   */
  sm?: SmServerOptions | false
  /**
   * Also serve XMPP over WebSocket (RFC 7395) at `server.websocketUrl`, on a second port: a
   * front that relays each WebSocket to a session of this server. Default false. Needs
   * `requireTls: false` (a WebSocket client has no STARTTLS; wss is not offered).
   */
  websocket?: boolean
}

/** An element a client sent, with its session. */
export interface ReceivedElement {
  readonly session: TestSession
  readonly element: Element
}

const DEFAULT_MECHANISMS = ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] as const
const DEFAULT_LIMITS: StreamParserOptions = { maxStanzaSize: 256 * 1024 }
const CLOSE_TIMEOUT_MS = 1000

type Listener = (event: ServerEvent) => void

/** An in-process XMPP server for tests. Start one with `startTestServer()`. */
export class TestServer {
  readonly host = '127.0.0.1' as const
  readonly domain: string
  /** The CA that signed the server's certificate, for clients' `ca` option. */
  readonly certs: { readonly ca: string }
  /** Faults copied into every new session (see `Faults.once`). */
  faults: Faults
  readonly #net: Server
  readonly #secureContext: SecureContext | undefined
  readonly #directTls: boolean
  readonly #mechanisms: readonly string[]
  readonly #requireTls: boolean
  readonly #iterations: number
  readonly #limits: StreamParserOptions
  readonly #users = new Map<string, UserRecord>()
  readonly #sessions: Session[] = []
  readonly #online = new Map<string, Session>()
  readonly #sockets = new Set<Socket>()
  readonly #log: ServerEvent[] = []
  readonly #received: ReceivedElement[] = []
  readonly #listeners = new Map<ServerEventName, Set<Listener>>()
  readonly #interceptors: Interceptor[] = []
  readonly #sm: SessionHost['sm']
  readonly #smRecords = new Map<string, SmRecord>()
  /** Ids of sessions that are gone, with their last `h` (bounded). */
  readonly #smGone = new Map<string, number>()
  readonly #host: SessionHost
  readonly #componentSecrets: ReadonlyMap<string, string>
  readonly #components = new Map<string, ComponentSession>()
  readonly #componentSessions = new Set<ComponentSession>()
  readonly #componentNet: Server | undefined
  #port = 0
  #componentPort = 0
  #closing: Promise<void> | undefined
  readonly #websocket: boolean
  #front: WebSocketFront | undefined

  /** @internal use startTestServer() */
  constructor(options: TestServerOptions = {}) {
    const domain = options.domain ?? 'localhost'
    let parsed: JID | undefined
    try {
      parsed = JID.parse(domain)
    } catch (cause) {
      throw new TestServerError(
        'invalid-options',
        `domain ${JSON.stringify(domain)} is not a valid domain`,
        cause,
      )
    }
    if (parsed.local !== '' || parsed.resource !== '') {
      throw new TestServerError('invalid-options', 'domain must be a bare domain')
    }
    this.domain = parsed.domain
    const tls = options.tls
    if (tls === false) {
      if (options.requireTls === true) {
        throw new TestServerError('invalid-options', 'requireTls needs tls (it is false)')
      }
      this.#secureContext = undefined
      this.certs = { ca: '' }
    } else {
      const cert = tls?.cert ?? testCerts.cert
      const key = tls?.key ?? testCerts.key
      this.#secureContext = createSecureContext({ cert, key })
      this.certs = { ca: tls === undefined ? testCerts.ca : (tls.ca ?? String(cert)) }
    }
    this.#directTls = options.directTls ?? false
    if (this.#directTls && tls === false) {
      throw new TestServerError('invalid-options', 'directTls needs tls (it is false)')
    }
    this.#requireTls = options.requireTls ?? tls !== false
    this.#websocket = options.websocket ?? false
    if (this.#websocket && this.#requireTls) {
      throw new TestServerError(
        'invalid-options',
        'websocket needs requireTls: false (or tls: false): a WebSocket client has no STARTTLS',
      )
    }
    this.#mechanisms = [...(options.mechanisms ?? DEFAULT_MECHANISMS)]
    this.#iterations = options.scramIterations ?? 4096
    if (!Number.isInteger(this.#iterations) || this.#iterations < 1) {
      throw new TestServerError('invalid-options', 'scramIterations must be a positive integer')
    }
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits }
    this.faults = { ...options.faults }
    this.#sm =
      options.sm === false
        ? undefined
        : {
            hibernation: options.sm?.hibernation ?? 30_000,
            counterStart: options.sm?.counterStart ?? 0,
            ...(options.sm?.max === undefined ? {} : { max: options.sm.max }),
            ...(options.sm?.location === undefined ? {} : { location: options.sm.location }),
          }
    for (const [name, password] of Object.entries(options.users ?? {})) {
      this.addUser(name, password)
    }
    this.#host = this.#makeHost()
    this.#net = createServer((socket) => this.#accept(socket))
    const secrets = new Map<string, string>()
    for (const [name, secret] of Object.entries(options.components ?? {})) {
      const jid = JID.tryParse(name)
      if (jid === undefined || jid.local !== '' || jid.resource !== '' || secret === '') {
        throw new TestServerError(
          'invalid-options',
          `components: ${JSON.stringify(name)} needs a bare domain and a non-empty secret`,
        )
      }
      secrets.set(jid.domain, secret)
    }
    this.#componentSecrets = secrets
    this.#componentNet =
      secrets.size === 0 ? undefined : createServer((socket) => this.#acceptComponent(socket))
  }

  /** The port it listens on, on 127.0.0.1. */
  get port(): number {
    return this.#port
  }

  /** `xmpp://127.0.0.1:port` (`xmpps://` with directTls), for a client's `service` option. */
  get service(): string {
    return `${this.#directTls ? 'xmpps' : 'xmpp'}://${this.host}:${this.#port}`
  }

  /** The component port (XEP-0114) on 127.0.0.1; 0 without `components`. */
  get componentPort(): number {
    return this.#componentPort
  }

  /** `xmpp://127.0.0.1:componentPort`, for a component's `service` option. */
  get componentService(): string {
    return `xmpp://${this.host}:${this.#componentPort}`
  }

  /** The components connected now (past their handshake), by domain. */
  get components(): ReadonlyMap<string, { readonly received: readonly Element[] }> {
    return this.#components
  }

  /**
   * Ends a connected component's stream (with a stream error when `condition` is given), as a
   * server that goes away would.
   */
  closeComponent(domain: string, condition?: string): void {
    this.#components.get(domain)?.close(condition)
  }

  /** Destroys a connected component's socket without a word (a network loss). */
  dropComponent(domain: string): void {
    this.#components.get(domain)?.drop()
  }

  /** `ws://127.0.0.1:port/xmpp-websocket` with the `websocket` option; undefined otherwise. */
  get websocketUrl(): string | undefined {
    return this.#front ? `ws://${this.host}:${this.#front.port}/xmpp-websocket` : undefined
  }

  /** Every session since the start, in order, open or closed. */
  get sessions(): readonly TestSession[] {
    return this.#sessions
  }

  /** Every element that clients sent, in order, with its session. */
  get received(): readonly ReceivedElement[] {
    return this.#received
  }

  /** Every event so far, in order. */
  get log(): readonly ServerEvent[] {
    return this.#log
  }

  /**
   * Adds an account (or changes its password). The name is normalised as a JID localpart;
   * SCRAM data is derived now, once per enabled SCRAM mechanism.
   */
  addUser(name: string, password: string): void {
    let local: string
    try {
      local = new JID(saslprep(name), this.domain).local
    } catch (cause) {
      throw new TestServerError('invalid-user', 'the user name is not a valid JID localpart', cause)
    }
    if (local === '') throw new TestServerError('invalid-user', 'the user name is empty')
    const scram = new Map<string, ScramCredentials>()
    const salt = randomBytes(16)
    for (const mechanism of this.#mechanisms) {
      const hash = SCRAM_MECHANISMS[mechanism]
      if (hash !== undefined) {
        scram.set(mechanism, deriveScramCredentials(password, hash, this.#iterations, salt))
      }
    }
    // PLAIN compares digests, so that the comparison is constant-time.
    const digest = createHash('sha256').update(saslprep(password), 'utf8').digest()
    this.#users.set(local, {
      name: local,
      scram,
      passwordMatches: (candidate) =>
        timingSafeEqual(createHash('sha256').update(saslprep(candidate), 'utf8').digest(), digest),
    })
  }

  /**
   * Handles elements of bound sessions before the built-in logic (to answer disco, say): the
   * interceptor returns true when it handled the element. Returns a function that removes it.
   */
  intercept(interceptor: Interceptor): () => void {
    this.#interceptors.push(interceptor)
    return () => {
      const i = this.#interceptors.indexOf(interceptor)
      if (i !== -1) this.#interceptors.splice(i, 1)
    }
  }

  /** Listens to an event; returns a function that stops listening. */
  on<K extends ServerEventName>(type: K, listener: (event: ServerEventOf<K>) => void): () => void {
    let set = this.#listeners.get(type)
    if (set === undefined) {
      set = new Set()
      this.#listeners.set(type, set)
    }
    // One map for every event type: the type parameter ties each listener to its own.
    const l = listener as unknown as Listener
    set.add(l)
    return () => set.delete(l)
  }

  /**
   * The first event of this type (already logged or to come) that passes `predicate`. Rejects
   * with TestServerError('timeout') after `timeout` ms (default 5000).
   */
  waitFor<K extends ServerEventName>(
    type: K,
    predicate: (event: ServerEventOf<K>) => boolean = () => true,
    timeout = 5000,
  ): Promise<ServerEventOf<K>> {
    for (const e of this.#log) {
      if (e.type !== type) continue
      const match = e as unknown as ServerEventOf<K>
      if (predicate(match)) return Promise.resolve(match)
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off()
        reject(new TestServerError('timeout', `no ${type} event within ${timeout} ms`))
      }, timeout)
      const off = this.on(type, (e) => {
        if (!predicate(e)) return
        clearTimeout(timer)
        off()
        resolve(e)
      })
    })
  }

  /** @internal */
  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#net.once('error', reject)
      this.#net.listen(port, this.host, () => {
        this.#net.off('error', reject)
        resolve()
      })
    })
    const address = this.#net.address()
    this.#port = typeof address === 'object' && address !== null ? address.port : port
    const components = this.#componentNet
    if (components !== undefined) {
      await new Promise<void>((resolve, reject) => {
        components.once('error', reject)
        components.listen(0, this.host, () => {
          components.off('error', reject)
          resolve()
        })
      })
      const bound = components.address()
      this.#componentPort = typeof bound === 'object' && bound !== null ? bound.port : 0
    }
    if (this.#websocket) this.#front = await startWebSocketFront(this.host, this.#port)
  }

  /**
   * Ends every session (stream error system-shutdown, RFC 6120 §4.9.3.20), stops listening,
   * and resolves once the port is free. Calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      const componentsClosed = new Promise<void>((done) => {
        if (this.#componentNet === undefined) done()
        else this.#componentNet.close(() => done())
      })
      // Resolves once the port, the component port and the WebSocket front's port are free.
      const front = this.#front?.close() ?? Promise.resolve()
      this.#net.close(() => {
        Promise.all([componentsClosed, front]).then(() => resolve(), resolve)
      })
      for (const c of this.#componentSessions) c.close('system-shutdown')
      for (const s of this.#sessions) if (!s.closed) s.close('system-shutdown')
      for (const s of this.#sessions) if (!s.closed) s.drop()
      for (const record of this.#smRecords.values()) clearTimeout(record.expiry)
      // A client that never reads must not hold the port.
      const timer = setTimeout(() => {
        for (const socket of this.#sockets) socket.destroy()
      }, CLOSE_TIMEOUT_MS)
      timer.unref()
    })
    return this.#closing
  }

  #accept(socket: Socket): void {
    if (this.#closing !== undefined) {
      socket.destroy()
      return
    }
    this.#sockets.add(socket)
    socket.once('close', () => this.#sockets.delete(socket))
    const { once, ...faults } = this.faults
    if (once) this.faults = {}
    const session = new Session(this.#host, socket, this.#sessions.length + 1, faults)
    this.#sessions.push(session)
    session.start()
  }

  #acceptComponent(socket: Socket): void {
    if (this.#closing !== undefined) {
      socket.destroy()
      return
    }
    this.#sockets.add(socket)
    socket.once('close', () => this.#sockets.delete(socket))
    const session = new ComponentSession(this.#componentHost(), socket)
    this.#componentSessions.add(session)
    socket.once('close', () => this.#componentSessions.delete(session))
  }

  #componentHost(): ComponentHost {
    const server = this
    return {
      limits: this.#limits,
      secretOf: (domain) => server.#componentSecrets.get(domain),
      attach(session) {
        const domain = session.domain ?? ''
        if (server.#components.has(domain)) return false
        server.#components.set(domain, session)
        return true
      },
      detach(session) {
        const domain = session.domain ?? ''
        if (server.#components.get(domain) === session) server.#components.delete(domain)
      },
      route(_session, stanza, to) {
        const targets = to.isBare()
          ? server.#host.resourcesOf(to)
          : [server.#host.find(to)].filter((s) => s !== undefined)
        for (const target of targets) target.deliver(serialize(stanza))
      },
      event: (domain, outcome) => server.#emit('component', { domain, outcome }),
    }
  }

  #emit<K extends ServerEventName>(type: K, fields: ServerEventMap[K]): void {
    const event = { type, ...fields } as ServerEvent
    this.#log.push(event)
    if (type === 'element') {
      const e = fields as ServerEventMap['element']
      this.#received.push({ session: e.session, element: e.element })
    }
    const set = this.#listeners.get(type)
    if (set === undefined) return
    for (const l of [...set]) {
      try {
        l(event)
      } catch (error) {
        // A listener's bug belongs to the test that added it: raise it there, not in the
        // session that happened to emit the event.
        queueMicrotask(() => {
          throw error
        })
      }
    }
  }

  #makeHost(): SessionHost {
    const server = this
    const users = this.#users
    const online = this.#online
    return {
      domain: this.domain,
      mechanisms: this.#mechanisms,
      requireTls: this.#requireTls,
      secureContext: this.#secureContext,
      directTls: this.#directTls,
      limits: this.#limits,
      scramIterations: this.#iterations,
      interceptors: this.#interceptors,
      emit: (type, fields) => server.#emit(type, fields),
      user(name) {
        const local = JID.tryParse(`${saslprep(name)}@${server.domain}`)?.local
        return local === undefined || local === '' ? undefined : users.get(local)
      },
      bind(session, username, resource) {
        const base = new JID(username, server.domain, resource)
        let full = resource === '' ? base.withResource(randomBytes(6).toString('hex')) : base
        // RFC 6120 §7.7.2.2: a resource in use gets a different one, never a conflict.
        while (online.has(full.toString())) {
          full = base.withResource(`${resource || 'r'}-${randomBytes(3).toString('hex')}`)
        }
        online.set(full.toString(), session)
        return full
      },
      unbind(session) {
        const jid = session.jid
        if (jid !== undefined && online.get(jid.toString()) === session)
          online.delete(jid.toString())
      },
      find(full) {
        return online.get(full.toString())
      },
      component: (domain) => server.#components.get(domain),
      sm: this.#sm,
      smAdd(record) {
        server.#smRecords.set(record.id, record)
      },
      smFind(id) {
        const record = server.#smRecords.get(id)
        if (record) return record
        const gone = server.#smGone.get(id)
        return gone === undefined ? undefined : { gone }
      },
      smRemove(record) {
        clearTimeout(record.expiry)
        record.expiry = undefined
        if (!server.#smRecords.delete(record.id)) return
        server.#smGone.set(record.id, record.inbound)
        if (server.#smGone.size > 1000) {
          const oldest = server.#smGone.keys().next().value
          if (oldest !== undefined) server.#smGone.delete(oldest)
        }
      },
      rebind(session, jid) {
        online.set(jid.toString(), session)
      },
      resourcesOf(bare) {
        const out: Session[] = []
        for (const s of online.values()) if (s.jid?.bare().equals(bare)) out.push(s)
        return out
      },
    }
  }
}

/** Starts a test server on 127.0.0.1 (a free port unless `port` is given). */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const server = new TestServer(options)
  await server.listen(options.port ?? 0)
  return server
}
