import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import { type SecureContext, TLSSocket } from 'node:tls'
import { JID } from '@core/jid'
import {
  NS_STANZA_ERRORS,
  NS_STREAM,
  NS_STREAM_ERRORS,
  serialize,
  STREAM_FOOTER,
  streamHeader,
  StreamParser,
  type StreamParserOptions,
  xml,
} from '@core/xml'
import type { ServerEventMap, ServerEventName } from './events.js'
import {
  type FaultName,
  type Faults,
  matchesStep,
  type SaslFailureCondition,
  type Step,
  type StepEvent,
} from './faults.js'
import { isBase64, type ScramCredentials, ScramServerExchange, SCRAM_MECHANISMS } from './scram.js'
import { NS_SM, parseH, SmRecord, type SmServerOptions } from './stream-management.js'

type Element = ReturnType<typeof xml>
type Data = string | Uint8Array

export const NS_CLIENT = 'jabber:client'
export const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls'
export const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl'
export const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind'
export const NS_SESSION = 'urn:ietf:params:xml:ns:xmpp-session'
export const NS_PING = 'urn:xmpp:ping'
export const NS_ROSTER = 'jabber:iq:roster'

/** SASL attempts allowed on one stream (RFC 6120 §6.4.5 asks for a bounded number of retries). */
const MAX_SASL_ATTEMPTS = 5
/** How long the server waits for the client's `</stream:stream>` after sending its own. */
const CLOSE_LINGER_MS = 1000
/** How long a dropped socket may take to flush before it is destroyed. */
const DROP_FLUSH_MS = 200

/**
 * Intercepts elements of bound sessions before the built-in handling: return true when the
 * element was handled. The element's `from` is already stamped with the session's full JID.
 */
export type Interceptor = (element: Element, session: TestSession) => boolean | undefined

/** A client connection as the test server sees it. */
export interface TestSession {
  /** 1 for the server's first session, then 2, 3, ... */
  readonly id: number
  /** The id the server gave the current stream. */
  readonly streamId: string
  /** How many streams the client opened on this connection so far. */
  readonly stream: number
  readonly tls: boolean
  /** The SASL mechanism the client chose last. */
  readonly mechanism: string | undefined
  readonly authenticated: boolean
  /** The authenticated user name (localpart). */
  readonly username: string | undefined
  /** The bound full JID. */
  readonly jid: JID | undefined
  /** Every top-level element read from the client, in order, as parsed. */
  readonly received: readonly Element[]
  /** Everything the server wrote to the client, one entry per write. */
  readonly sent: readonly string[]
  /** Bytes read from the client (after TLS decryption), in all. */
  readonly bytesReceived: number
  readonly closed: boolean
  /** This session's faults; a copy of `server.faults` taken when it connected. */
  faults: Faults
  /** Writes raw data or an element to the client, in order with the server's other output. */
  send(data: string | Uint8Array | Element): void
  /**
   * Closes the stream politely: a stream error when a condition is given, then
   * `</stream:stream>`. Sent at once, ahead of delayed output (which is discarded).
   */
  close(condition?: string): void
  /** Destroys the socket without a word. */
  drop(): void
}

/** @internal */
export interface UserRecord {
  /** The normalised user name (a JID localpart). */
  readonly name: string
  /** SCRAM data by mechanism name. */
  readonly scram: ReadonlyMap<string, ScramCredentials>
  /** For PLAIN: compares in constant time, after SASLprep. */
  passwordMatches(password: string): boolean
}

/** What a session needs from its server. @internal */
export interface SessionHost {
  readonly domain: string
  readonly mechanisms: readonly string[]
  readonly requireTls: boolean
  readonly secureContext: SecureContext | undefined
  readonly directTls: boolean
  readonly limits: StreamParserOptions
  readonly scramIterations: number
  readonly interceptors: readonly Interceptor[]
  emit<K extends ServerEventName>(type: K, event: ServerEventMap[K]): void
  user(name: string): UserRecord | undefined
  /** Reserves a full JID for the session; throws JIDError for an invalid resource. */
  bind(session: Session, username: string, resource: string): JID
  unbind(session: Session): void
  find(full: JID): Session | undefined
  resourcesOf(bare: JID): Session[]
  /** The external component connected under this domain (XEP-0114), if any. */
  component(domain: string): { deliver(stanza: Element): void } | undefined
  /** Stream management settings; undefined when the server does not offer it. */
  readonly sm:
    | (Required<Omit<SmServerOptions, 'max' | 'location'>> &
        Pick<SmServerOptions, 'max' | 'location'>)
    | undefined
  /** Lists a new stream management session. */
  smAdd(record: SmRecord): void
  /** A session kept for resumption by id, or the last `h` of one that is gone. */
  smFind(id: string): SmRecord | { gone: number } | undefined
  /** Forgets a session (keeping its last `h` for a later `<failed h/>`). */
  smRemove(record: SmRecord): void
  /** Routes the record's JID to `session` (a resumption took it over). */
  rebind(session: Session, jid: JID): void
}

type SaslState =
  | { readonly mechanism: string; readonly stage: 'initial' }
  | { readonly mechanism: string; readonly stage: 'final'; readonly scram: ScramServerExchange }

function toBuffer(d: Data): Buffer {
  return typeof d === 'string' ? Buffer.from(d, 'utf8') : Buffer.from(d)
}

function concat(a: Data | undefined, b: Data | undefined): Data | undefined {
  if (a === undefined || a === '') return b
  if (b === undefined || b === '') return a
  if (typeof a === 'string' && typeof b === 'string') return a + b
  return Buffer.concat([toBuffer(a), toBuffer(b)])
}

function printable(d: Data): string {
  return typeof d === 'string' ? d : Buffer.from(d).toString('utf8')
}

/** A copy of a stanza with other attributes; the children are shared, not copied. */
function withAttrs(el: Element, attrs: Record<string, string>): Element {
  const copy = xml(el.name, { ...(el.attrs as Record<string, string>), ...attrs })
  copy.children = el.children
  return copy
}

/** Steps whose answer is a stanza (counted by stream management). */
const STANZA_STEPS: ReadonlySet<Step> = new Set<Step>(['iq', 'message', 'presence', 'session'])

/** @internal one client connection; the public face is TestSession. */
export class Session implements TestSession {
  readonly id: number
  faults: Faults
  readonly #host: SessionHost
  #socket: Socket
  #parser: StreamParser | undefined
  #streamId = ''
  #stream = 0
  #tls = false
  #headerSent = false
  #awaitingTls = false
  #mechanism: string | undefined
  #sasl: SaslState | undefined
  #saslAttempts = 0
  #username: string | undefined
  #jid: JID | undefined
  #bound = false
  /** The stream management session, once enabled or resumed. */
  #sm: SmRecord | undefined
  /** The stream ended in a way that does not keep the session (clean close, stream error). */
  #smOver = false
  #stanzasAfterBind = 0
  #bytesAfterBind = 0
  #bytesReceived = 0
  #closing = false // our </stream:stream> is decided: elements are recorded, not handled
  #footerSent = false
  #clientClosed = false
  #dead = false // dropped or socket closed: nothing more is written
  #closed = false // the socket closed
  readonly #received: Element[] = []
  readonly #sent: string[] = []
  readonly #tasks: (() => void | Promise<void>)[] = []
  #running = false
  #epoch = 0 // bumped when pending output is cancelled: a delayed step then does nothing
  readonly #timers = new Set<NodeJS.Timeout>()
  readonly #wakers = new Set<() => void>()

  constructor(host: SessionHost, socket: Socket, id: number, faults: Faults) {
    this.#host = host
    this.#socket = socket
    this.id = id
    this.faults = faults
  }

  /** @internal starts reading; called once the server has listed the session. */
  start(): void {
    const socket = this.#socket
    socket.on('data', this.#onData)
    socket.on('error', this.#onSocketError)
    socket.on('close', this.#onSocketClose)
    this.#host.emit('connect', { session: this })
    if (this.#host.directTls) {
      // XEP-0368: TLS from the first byte; the stream starts once the handshake is done.
      this.#atStep('connect', undefined, undefined, () => this.#upgrade())
    } else {
      this.#newParser()
      this.#atStep('connect', undefined)
    }
  }

  get streamId(): string {
    return this.#streamId
  }
  get stream(): number {
    return this.#stream
  }
  get tls(): boolean {
    return this.#tls
  }
  get mechanism(): string | undefined {
    return this.#mechanism
  }
  get authenticated(): boolean {
    return this.#username !== undefined
  }
  get username(): string | undefined {
    return this.#username
  }
  get jid(): JID | undefined {
    return this.#jid
  }
  get received(): readonly Element[] {
    return this.#received
  }
  get sent(): readonly string[] {
    return this.#sent
  }
  get bytesReceived(): number {
    return this.#bytesReceived
  }
  get closed(): boolean {
    return this.#closed
  }

  send(data: string | Uint8Array | Element): void {
    const out = typeof data === 'string' || data instanceof Uint8Array ? data : serialize(data)
    this.#enqueue(() => this.#write(out))
  }

  close(condition?: string): void {
    if (this.#dead) return
    this.#smOver = true
    this.#cancelPending()
    if (!this.#footerSent) {
      let out = this.#headerSent ? '' : this.#header()
      if (condition !== undefined) {
        out += this.#streamErrorXml(condition)
        this.#host.emit('stream-error', { session: this, condition })
      }
      this.#write(out + STREAM_FOOTER)
      this.#footerSent = true
    }
    this.#linger()
  }

  drop(): void {
    if (this.#dead) return
    this.#dead = true
    this.#closing = true
    this.#parser?.stop()
    this.#cancelPending()
    const socket = this.#socket
    if (socket.destroyed) return
    // Flush what was written (an injected reply, say), then destroy.
    const timer = setTimeout(() => socket.destroy(), DROP_FLUSH_MS)
    timer.unref()
    socket.end(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  }

  /** @internal delivers a routed stanza. */
  deliver(data: string): void {
    const record = this.#sm
    if (this.#dead && record !== undefined && record.expiry !== undefined) {
      // Hibernating (XEP-0198 §5): kept for the resumption.
      record.sent(data)
      return
    }
    if (!this.#closing) this.#enqueue(() => this.#writeStanza(data))
  }

  /** Writes a stanza; with stream management on, it is counted and kept until acked. */
  #writeStanza(data: string): void {
    if (this.#dead || this.#socket.destroyed) return
    this.#sm?.sent(data)
    this.#write(data)
  }

  // ---------------------------------------------------------------------------------------
  // Output: a serial queue, so a delayed answer holds back what follows it.

  #enqueue(task: () => void | Promise<void>): void {
    if (this.#dead) return
    this.#tasks.push(task)
    if (!this.#running) this.#drain()
  }

  #drain(): void {
    this.#running = true
    while (this.#tasks.length > 0 && !this.#dead) {
      const task = this.#tasks.shift()!
      let result: void | Promise<void>
      try {
        result = task()
      } catch (error) {
        this.#internalError(error)
        break
      }
      if (result instanceof Promise) {
        result.then(
          () => this.#drain(),
          (error: unknown) => {
            this.#internalError(error)
            this.#running = false
          },
        )
        return
      }
    }
    this.#running = false
  }

  #cancelPending(): void {
    this.#epoch++
    this.#tasks.length = 0
    for (const t of this.#timers) clearTimeout(t)
    this.#timers.clear()
    for (const wake of this.#wakers) wake()
    this.#wakers.clear()
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer)
        this.#timers.delete(timer)
        this.#wakers.delete(wake)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      this.#timers.add(timer)
      this.#wakers.add(wake)
    })
  }

  #write(data: Data | undefined): void {
    if (data === undefined || this.#dead || this.#socket.destroyed) return
    if (typeof data === 'string' && data === '') return
    this.#sent.push(printable(data))
    this.#socket.write(data)
  }

  #fault(fault: FaultName, step?: Step): void {
    this.#host.emit('fault', { session: this, fault, step })
  }

  /**
   * Reaching a step: applies delay, withhold, closeAtStep and inject, then runs `action`,
   * whose return value is written (with injected data appended), then `after`.
   */
  #atStep(
    step: Step,
    element: Element | undefined,
    action?: () => Data | undefined,
    after?: () => void,
  ): void {
    const stream = this.#stream
    this.#enqueue(() => {
      const event: StepEvent = { step, session: this, element, stream }
      this.#host.emit('step', event)
      const delay = this.faults.delay
      if (delay !== undefined && delay.ms > 0 && matchesStep(delay.step, event)) {
        this.#fault('delay', step)
        const epoch = this.#epoch
        return this.#sleep(delay.ms).then(() => {
          if (epoch === this.#epoch) this.#act(event, action, after)
        })
      }
      this.#act(event, action, after)
    })
  }

  /**
   * The faults compose: `withhold` skips the step's own action (its answer and what follows
   * it), while `inject` and `closeAtStep` still apply. Withhold and inject together replace
   * the step's answer with the injected data.
   */
  #act(event: StepEvent, action?: () => Data | undefined, after?: () => void): void {
    if (this.#dead) return
    const f = this.faults
    const withheld = matchesStep(f.withhold, event)
    if (withheld) this.#fault('withhold', event.step)
    const inject =
      f.inject !== undefined && matchesStep(f.inject.step, event) ? f.inject.data : undefined
    if (inject !== undefined) this.#fault('inject', event.step)
    if (matchesStep(f.closeAtStep, event)) {
      this.#fault('closeAtStep', event.step)
      this.#write(inject)
      this.drop()
      return
    }
    if (withheld) {
      this.#write(inject)
      return
    }
    const out = action?.()
    if (out !== undefined && out !== '' && STANZA_STEPS.has(event.step) && this.#sm) {
      this.#sm.sent(printable(out))
    }
    this.#write(concat(out, inject))
    after?.()
  }

  // ---------------------------------------------------------------------------------------
  // Input

  readonly #onData = (chunk: Buffer): void => {
    if (this.#dead) return
    this.#bytesReceived += chunk.length
    const parser = this.#parser
    if (parser === undefined || parser.stopped) {
      this.#host.emit('unexpected-data', {
        session: this,
        data: chunk.toString('latin1'),
        when: this.#awaitingTls ? 'after-starttls' : 'after-close',
      })
      return
    }
    let data = chunk
    let cut = false
    const limit = this.faults.closeAfterBytes
    if (this.#bound && limit !== undefined) {
      const left = limit - this.#bytesAfterBind
      if (chunk.length >= left) {
        data = chunk.subarray(0, Math.max(0, left))
        cut = true
      }
      this.#bytesAfterBind += data.length
    }
    try {
      if (data.length > 0) parser.write(data)
    } catch (error) {
      this.#internalError(error)
      return
    }
    if (cut && !this.#dead) {
      this.#parser?.stop()
      this.#enqueue(() => {
        this.#fault('closeAfterBytes')
        this.drop()
      })
    }
  }

  readonly #onSocketError = (): void => {
    // A reset by the client: 'close' follows and ends the session.
  }

  readonly #onSocketClose = (): void => {
    if (this.#closed) return
    this.#closed = true
    this.#dead = true
    this.#closing = true
    this.#parser?.stop()
    this.#cancelPending()
    const record = this.#sm
    if (record?.resumable && !this.#clientClosed && !this.#smOver && this.#host.sm) {
      // XEP-0198 §5: an unexpected drop keeps the session for resumption for a while; the
      // JID stays routed here, and what arrives for it waits in the record.
      const hibernation = this.#host.sm.hibernation
      this.#host.emit('sm', { session: this, event: 'hibernated', id: record.id })
      record.expiry = setTimeout(() => this.#expire(record), hibernation)
      record.expiry.unref()
      if (hibernation <= 0) this.#expire(record)
    } else {
      if (record) this.#host.smRemove(record)
      this.#host.unbind(this)
    }
    this.#host.emit('close', { session: this, clean: this.#clientClosed })
  }

  #expire(record: SmRecord): void {
    clearTimeout(record.expiry)
    record.expiry = undefined
    if (this.#sm !== record) return // resumed elsewhere
    this.#sm = undefined
    this.#host.smRemove(record)
    this.#host.unbind(this)
    this.#host.emit('sm', { session: this, event: 'expired', id: record.id })
  }

  /** @internal a resumption took the record over: this (dead) session lets it go. */
  release(record: SmRecord): void {
    if (this.#sm === record) this.#sm = undefined
    clearTimeout(record.expiry)
    record.expiry = undefined
    if (!this.#dead) {
      // XEP-0198 §5: the old stream (a half-open one, say) is closed.
      this.#smOver = true
      this.close('conflict')
    }
  }

  #newParser(): void {
    this.#parser?.stop()
    this.#headerSent = false
    this.#parser = new StreamParser(
      {
        streamStart: (attrs) => this.#onHeader(attrs),
        element: (el) => this.#onElement(el),
        streamEnd: () => this.#onFooter(),
        error: (err) => this.#streamError(err.condition ?? 'bad-format'),
      },
      this.#host.limits,
    )
  }

  #internalError(error: unknown): void {
    this.#host.emit('error', { session: this, error })
    if (!this.#dead) this.close('internal-server-error')
  }

  // ---------------------------------------------------------------------------------------
  // Streams (RFC 6120 §4)

  #header(): string {
    return streamHeader({
      xmlns: NS_CLIENT,
      'xmlns:stream': NS_STREAM,
      id: this.#streamId,
      from: this.#host.domain,
      version: '1.0',
      'xml:lang': 'en',
    })
  }

  #streamErrorXml(condition: string): string {
    return serialize(xml('stream:error', null, xml(condition, { xmlns: NS_STREAM_ERRORS })))
  }

  /** RFC 6120 §4.9: a stream error ends the stream; our header goes first if not yet sent. */
  #streamError(condition: string, appCondition = ''): void {
    if (this.#closing) return
    this.#closing = true
    this.#smOver = true
    this.#parser?.stop()
    this.#enqueue(() => {
      if (this.#footerSent) return
      this.#host.emit('stream-error', { session: this, condition })
      const header = this.#headerSent ? '' : this.#header()
      this.#write(
        header +
          this.#streamErrorXml(condition).replace(
            '</stream:error>',
            `${appCondition}</stream:error>`,
          ) +
          STREAM_FOOTER,
      )
      this.#footerSent = true
      this.#linger()
    })
  }

  /** After our footer: wait a little for the client's, then close the socket. */
  #linger(): void {
    this.#closing = true
    const timer = setTimeout(() => this.drop(), CLOSE_LINGER_MS)
    timer.unref()
    this.#timers.add(timer)
  }

  #onHeader(attrs: Record<string, string>): void {
    this.#stream++
    this.#headerSent = false
    // RFC 6120 §4.7.3: a fresh id for every stream, restarts included.
    this.#streamId = randomBytes(8).toString('hex')
    this.#host.emit('header', { session: this, attrs, stream: this.#stream })
    const condition = this.#checkHeader(attrs)
    if (condition !== undefined) {
      this.#streamError(condition)
      return
    }
    this.#atStep('header', undefined, () => {
      this.#headerSent = true
      return this.#header()
    })
    this.#atStep('features', undefined, () =>
      this.#headerSent ? serialize(this.#features()) : undefined,
    )
  }

  #checkHeader(attrs: Record<string, string>): string | undefined {
    // RFC 6120 §4.9.3.10: the content namespace must be jabber:client for c2s.
    if (attrs.xmlns !== NS_CLIENT) return 'invalid-namespace'
    // §4.9.3.6: a 'to' naming a domain we do not serve.
    const to = attrs.to
    if (to !== undefined && !JID.tryParse(to)?.equals(this.#host.domain)) return 'host-unknown'
    // §4.7.5: no version means pre-1.0, which this server does not speak.
    const major = Number.parseInt(attrs.version ?? '0', 10)
    if (!(major >= 1)) return 'unsupported-version'
    return undefined
  }

  /** Whether SASL may run now: after TLS, or when TLS is not required (or not offered). */
  get #saslAllowed(): boolean {
    return this.#tls || !this.#host.requireTls || !this.#offersStarttls
  }

  get #offersStarttls(): boolean {
    return this.#host.secureContext !== undefined && this.faults.offerStarttls !== false
  }

  #features(): Element {
    const features = xml('stream:features')
    if (this.#username === undefined) {
      // RFC 6120 §5.3.1: STARTTLS, marked <required/> when nothing is allowed without it.
      if (!this.#tls && this.#offersStarttls) {
        features.children.push(
          xml('starttls', { xmlns: NS_TLS }, this.#host.requireTls ? xml('required') : null),
        )
      }
      if (this.#saslAllowed) {
        features.children.push(
          xml(
            'mechanisms',
            { xmlns: NS_SASL },
            this.#host.mechanisms.map((m) => xml('mechanism', null, m)),
          ),
        )
      }
    } else {
      // RFC 6120 §7.4 resource binding; the legacy session feature is marked optional
      // (RFC 6121 dropped it; draft-cridland-xmpp-session §2).
      if (this.faults.offerBind === false) this.#fault('offerBind', 'features')
      else features.children.push(xml('bind', { xmlns: NS_BIND }))
      features.children.push(xml('session', { xmlns: NS_SESSION }, xml('optional')))
      // XEP-0198 §3, §5: stream management, offered after authentication.
      if (this.#host.sm) features.children.push(xml('sm', { xmlns: NS_SM }))
    }
    return features
  }

  #onFooter(): void {
    this.#clientClosed = true
    if (this.#footerSent) {
      // We closed first and this is the answer: done (RFC 6120 §4.4).
      this.drop()
      return
    }
    if (this.#closing) {
      // Our own footer is already queued (after a stream error, say): close once it is out.
      this.#enqueue(() => this.drop())
      return
    }
    this.#closing = true
    this.#atStep(
      'close',
      undefined,
      () => {
        this.#footerSent = true
        return STREAM_FOOTER
      },
      () => this.drop(),
    )
  }

  #onElement(el: Element): void {
    this.#received.push(el)
    this.#host.emit('element', { session: this, element: el })
    if (this.#closing) return
    const counting = this.#bound
    if (counting && (el.name === 'message' || el.name === 'presence' || el.name === 'iq')) {
      // XEP-0198 §4: handled now (the server acts on it at once), so it counts.
      this.#sm?.received()
      this.#host.emit('stanza', { session: this, element: el })
    }
    this.#dispatch(el)
    if (!counting || this.#dead) return
    this.#stanzasAfterBind++
    const limit = this.faults.closeAfterStanzas
    if (limit !== undefined && this.#stanzasAfterBind >= limit) {
      this.#parser?.stop()
      this.#closing = true
      this.#enqueue(() => {
        this.#fault('closeAfterStanzas')
        this.drop()
      })
    }
  }

  #dispatch(el: Element): void {
    if (this.#username === undefined) {
      if (el.is('starttls', NS_TLS)) this.#onStarttls(el)
      else if (el.is('auth', NS_SASL)) this.#onAuth(el)
      else if (el.is('response', NS_SASL)) this.#onResponse(el)
      else if (el.is('abort', NS_SASL)) this.#onAbort(el)
      // RFC 6120 §4.9.3.12: nothing else before authentication.
      else this.#streamError('not-authorized')
      return
    }
    if (!this.#bound) {
      const bind =
        el.name === 'iq' && el.attrs.type === 'set' ? el.getChild('bind', NS_BIND) : undefined
      if (bind !== undefined && el.attrs.id !== undefined) this.#onBind(el, bind)
      else if (el.is('resume', NS_SM) && this.#host.sm) this.#onResume(el)
      else this.#streamError('not-authorized')
      return
    }
    if (el.attrs.xmlns === NS_SM && this.#host.sm) {
      this.#onSm(el)
      return
    }
    this.#onStanza(el)
  }

  // ---------------------------------------------------------------------------------------
  // STARTTLS (RFC 6120 §5.4)

  #onStarttls(el: Element): void {
    const f = this.faults
    if (f.dropOnStarttls) {
      this.#fault('dropOnStarttls', 'starttls')
      this.drop()
      return
    }
    if (f.starttlsFailure || this.#tls || this.#host.secureContext === undefined) {
      if (f.starttlsFailure) this.#fault('starttlsFailure', 'starttls')
      // §5.4.2.2: <failure/>, then the stream and the connection are closed. The parser keeps
      // running so that whatever the client sends afterwards is recorded.
      this.#closing = true
      this.#atStep(
        'starttls',
        el,
        () => {
          this.#footerSent = true
          return `${serialize(xml('failure', { xmlns: NS_TLS }))}${STREAM_FOOTER}`
        },
        () => this.#linger(),
      )
      return
    }
    // §5.4.3.3: nothing may follow <starttls/> in plaintext; any byte that does is reported
    // as unexpected data and discarded.
    this.#parser?.stop()
    this.#parser = undefined
    this.#awaitingTls = true
    this.#atStep(
      'starttls',
      el,
      () => serialize(xml('proceed', { xmlns: NS_TLS })),
      () => {
        if (this.faults.silenceAfterProceed) this.#fault('silenceAfterProceed', 'starttls')
        else this.#upgrade()
      },
    )
  }

  #upgrade(): void {
    const plain = this.#socket
    plain.removeListener('data', this.#onData)
    const secure = new TLSSocket(plain, {
      isServer: true,
      secureContext: this.#host.secureContext!,
    })
    this.#socket = secure
    secure.on('data', this.#onData)
    secure.on('error', this.#onSocketError)
    secure.on('close', this.#onSocketClose)
    secure.once('secure', () => {
      if (this.#dead) return
      this.#tls = true
      this.#awaitingTls = false
      this.#newParser()
      this.#host.emit('tls', { session: this })
      this.#atStep('tls', undefined)
    })
  }

  // ---------------------------------------------------------------------------------------
  // SASL (RFC 6120 §6)

  #saslFailure(
    el: Element,
    step: Step,
    condition: SaslFailureCondition | string,
    username?: string,
  ): void {
    const mechanism = this.#sasl?.mechanism ?? this.#mechanism ?? ''
    this.#sasl = undefined
    this.#saslAttempts++
    this.#host.emit('auth-result', {
      session: this,
      mechanism,
      success: false,
      username,
      condition,
    })
    this.#atStep(step, el, () => serialize(xml('failure', { xmlns: NS_SASL }, xml(condition))))
    // §6.4.5: a bounded number of retries, then the stream ends.
    if (this.#saslAttempts >= MAX_SASL_ATTEMPTS) this.#streamError('policy-violation')
  }

  #saslSuccess(el: Element, step: Step, username: string, data: string | undefined): void {
    const f = this.faults
    if (f.saslFailure !== undefined) {
      this.#fault('saslFailure', step)
      this.#saslFailure(el, step, f.saslFailure, username)
      return
    }
    const mechanism = this.#sasl?.mechanism ?? this.#mechanism ?? ''
    this.#sasl = undefined
    // The session is authenticated only once <success/> is actually sent: a withheld or
    // replaced answer (faults) leaves it unauthenticated.
    this.#atStep(step, el, () => {
      this.#username = username
      this.#host.emit('auth-result', {
        session: this,
        mechanism,
        success: true,
        username,
        condition: undefined,
      })
      // §6.4.6: the client restarts the stream right after <success/>: read a new header.
      this.#newParser()
      return serialize(xml('success', { xmlns: NS_SASL }, data === undefined ? null : data))
    })
  }

  /** SASL data of <auth/> or <response/>: undefined when absent, null when not base64. */
  #saslData(el: Element): Buffer | undefined | null {
    const text = el.getText().trim()
    if (text === '') return undefined
    if (text === '=') return Buffer.alloc(0) // §6.4.2: '=' is an empty response
    return isBase64(text) ? Buffer.from(text, 'base64') : null
  }

  #onAuth(el: Element): void {
    const mechanism = String(el.attrs.mechanism ?? '')
    this.#mechanism = mechanism
    this.#sasl = undefined
    this.#host.emit('auth', { session: this, mechanism })
    if (this.faults.neverAnswerSasl) {
      this.#fault('neverAnswerSasl', 'auth')
      return
    }
    if (!this.#saslAllowed) {
      this.#saslFailure(el, 'auth', 'encryption-required')
      return
    }
    if (
      !this.#host.mechanisms.includes(mechanism) ||
      (mechanism !== 'PLAIN' && SCRAM_MECHANISMS[mechanism] === undefined)
    ) {
      this.#saslFailure(el, 'auth', 'invalid-mechanism')
      return
    }
    const data = this.#saslData(el)
    if (data === null) {
      this.#saslFailure(el, 'auth', 'incorrect-encoding')
      return
    }
    this.#sasl = { mechanism, stage: 'initial' }
    if (data === undefined) {
      // §6.4.2: no initial response: an empty challenge asks for it.
      this.#atStep('auth', el, () => serialize(xml('challenge', { xmlns: NS_SASL })))
      return
    }
    this.#saslStep(el, 'auth', data)
  }

  #onResponse(el: Element): void {
    if (this.faults.neverAnswerSasl) {
      this.#fault('neverAnswerSasl', 'response')
      return
    }
    if (this.#sasl === undefined) {
      this.#saslFailure(el, 'response', 'malformed-request')
      return
    }
    const data = this.#saslData(el)
    if (data === null) {
      this.#saslFailure(el, 'response', 'incorrect-encoding')
      return
    }
    this.#saslStep(el, 'response', data ?? Buffer.alloc(0))
  }

  #onAbort(el: Element): void {
    // §6.4.4: the server answers an abort with <failure><aborted/></failure>.
    this.#saslFailure(el, 'response', 'aborted')
  }

  #saslStep(el: Element, step: Step, data: Buffer): void {
    const sasl = this.#sasl!
    if (sasl.stage === 'initial') {
      if (sasl.mechanism === 'PLAIN') {
        this.#plain(el, step, data)
        return
      }
      const scram = new ScramServerExchange(SCRAM_MECHANISMS[sasl.mechanism]!, {
        lookup: (name) => this.#host.user(name)?.scram.get(sasl.mechanism),
        authzid: (authzid, name) => this.#authzidOk(authzid, name),
        iterations: this.#host.scramIterations,
      })
      const r = scram.first(data.toString('utf8'))
      if (r.kind !== 'challenge') {
        const condition = r.kind === 'failure' ? r.condition : 'not-authorized'
        this.#saslFailure(el, step, condition, scram.username || undefined)
        return
      }
      this.#sasl = { mechanism: sasl.mechanism, stage: 'final', scram }
      this.#atStep(step, el, () =>
        serialize(xml('challenge', { xmlns: NS_SASL }, Buffer.from(r.data).toString('base64'))),
      )
      return
    }
    const r = sasl.scram.final(data.toString('utf8'))
    if (r.kind === 'failure') {
      this.#saslFailure(el, step, r.condition, sasl.scram.username)
      return
    }
    if (r.kind !== 'success') {
      this.#saslFailure(el, step, 'malformed-request')
      return
    }
    let final: string | undefined = Buffer.from(r.data).toString('base64')
    if (this.faults.omitServerSignature) {
      this.#fault('omitServerSignature', step)
      final = undefined
    } else if (this.faults.badServerSignature) {
      this.#fault('badServerSignature', step)
      const wrong = Buffer.from(r.serverSignature)
      wrong[0] = wrong[0]! ^ 0xff
      final = Buffer.from(`v=${wrong.toString('base64')}`).toString('base64')
    }
    this.#saslSuccess(el, step, r.username, final)
  }

  /** RFC 4616 §2: [authzid] NUL authcid NUL passwd. */
  #plain(el: Element, step: Step, data: Buffer): void {
    const parts = data.toString('utf8').split('\0')
    if (parts.length !== 3) {
      this.#saslFailure(el, step, 'malformed-request')
      return
    }
    const [authzid, authcid, password] = parts as [string, string, string]
    const user = this.#host.user(authcid)
    if (user === undefined || !user.passwordMatches(password)) {
      this.#saslFailure(el, step, 'not-authorized', authcid || undefined)
      return
    }
    if (authzid !== '' && !this.#authzidOk(authzid, user.name)) {
      this.#saslFailure(el, step, 'invalid-authzid', user.name)
      return
    }
    this.#saslSuccess(el, step, user.name, undefined)
  }

  /** A client may only authorize as itself: its bare JID (or its user name). */
  #authzidOk(authzid: string, username: string): boolean {
    const user = this.#host.user(username)
    if (user === undefined) return false
    if (authzid === user.name) return true
    const j = JID.tryParse(authzid)
    return j?.isBare() === true && j.local === user.name && j.domain === this.#host.domain
  }

  // ---------------------------------------------------------------------------------------
  // Resource binding (RFC 6120 §7)

  #onBind(iq: Element, bind: Element): void {
    this.#atStep(
      'bind',
      iq,
      () => {
        const requested = (bind.getChildText('resource') ?? '').trim()
        let full: JID
        try {
          full = this.#host.bind(this, this.#username!, requested)
        } catch {
          // §7.7.2.1: a resource that is not a valid resourcepart.
          return this.#iqError(iq, 'bad-request', 'modify')
        }
        this.#jid = full
        this.#bound = true
        this.#host.emit('bind', { session: this, jid: full })
        const told = this.faults.bindJid
        if (told !== undefined) this.#fault('bindJid', 'bind')
        return serialize(
          xml(
            'iq',
            { type: 'result', id: iq.attrs.id },
            xml('bind', { xmlns: NS_BIND }, xml('jid', null, told ?? full.toString())),
          ),
        )
      },
      () => {
        const f = this.faults
        if (this.#bound && (f.closeAfterBytes === 0 || f.closeAfterStanzas === 0)) {
          this.#fault(f.closeAfterBytes === 0 ? 'closeAfterBytes' : 'closeAfterStanzas')
          this.drop()
        }
      },
    )
  }

  // ---------------------------------------------------------------------------------------
  // Stream management (XEP-0198)

  #onSm(el: Element): void {
    const sm = this.#host.sm!
    switch (el.name) {
      case 'enable': {
        // §3: once per session, after binding.
        if (this.#sm !== undefined) {
          this.send(
            xml('failed', { xmlns: NS_SM }, xml('unexpected-request', { xmlns: NS_STANZA_ERRORS })),
          )
          return
        }
        const resumable = el.attrs.resume === 'true' || el.attrs.resume === '1'
        const record = new SmRecord(this.#username!, this.#jid!, resumable, sm.counterStart)
        this.#sm = record
        this.#host.smAdd(record)
        this.#host.emit('sm', { session: this, event: 'enabled', id: record.id })
        this.send(
          xml('enabled', {
            xmlns: NS_SM,
            id: record.id,
            ...(resumable ? { resume: 'true' } : {}),
            ...(sm.max === undefined ? {} : { max: String(sm.max) }),
            ...(sm.location === undefined ? {} : { location: sm.location }),
          }),
        )
        return
      }
      case 'r': {
        const record = this.#sm
        if (record === undefined) return
        const f = this.faults
        if (f.smWithholdAcks) {
          this.#fault('smWithholdAcks')
          return
        }
        let h = String(record.inbound)
        if (f.smMalformedH !== undefined) {
          this.#fault('smMalformedH')
          h = f.smMalformedH
        } else if (f.smAckTooHigh !== undefined) {
          this.#fault('smAckTooHigh')
          h = String((record.inbound + f.smAckTooHigh) >>> 0)
        }
        this.send(xml('a', { xmlns: NS_SM, h }))
        return
      }
      case 'a': {
        const record = this.#sm
        if (record === undefined) return
        const h = parseH(el.attrs.h)
        if (h === undefined) {
          this.#streamError('undefined-condition')
          return
        }
        if (!record.ack(h)) {
          // §4: an ack for more than was sent.
          this.#streamError(
            'undefined-condition',
            serialize(
              xml('handled-count-too-high', {
                xmlns: NS_SM,
                h: String(h),
                'send-count': String(record.outbound),
              }),
            ),
          )
        }
        return
      }
      default:
        this.#streamError('unsupported-stanza-type')
    }
  }

  /** §5: `<resume previd h/>`, after authentication and instead of binding. */
  #onResume(el: Element): void {
    const previd = String(el.attrs.previd ?? '')
    const found = this.#host.smFind(previd)
    const failed = (h: number | undefined) => {
      this.#host.emit('sm', { session: this, event: 'failed', id: previd })
      this.send(
        xml(
          'failed',
          { xmlns: NS_SM, ...(h === undefined ? {} : { h: String(h) }) },
          xml('item-not-found', { xmlns: NS_STANZA_ERRORS }),
        ),
      )
    }
    if (found === undefined) {
      failed(undefined)
      return
    }
    if ('gone' in found) {
      failed(found.gone)
      return
    }
    if (found.username !== this.#username) {
      // Another account's session: as if it did not exist.
      failed(undefined)
      return
    }
    if (this.faults.smRefuseResume) {
      this.#fault('smRefuseResume')
      this.#host.find(found.jid)?.release(found)
      this.#host.smRemove(found)
      this.#host.unbind(this.#host.find(found.jid) ?? this)
      failed(found.inbound)
      return
    }
    const h = parseH(el.attrs.h)
    if (h === undefined || !found.ack(h)) {
      this.#streamError('undefined-condition')
      return
    }
    // Take the session over: its JID now routes here, and what it did not get is resent.
    const old = this.#host.find(found.jid)
    old?.release(found)
    this.#sm = found
    this.#jid = found.jid
    this.#bound = true
    this.#host.rebind(this, found.jid)
    this.#host.emit('sm', { session: this, event: 'resumed', id: found.id })
    const resend = found.pendingStanzas()
    this.#enqueue(() => {
      this.#write(
        serialize(xml('resumed', { xmlns: NS_SM, previd: found.id, h: String(found.inbound) })) +
          resend.join(''),
      )
    })
  }

  // ---------------------------------------------------------------------------------------
  // Stanzas (RFC 6120 §8, §10)

  #errorXml(el: Element, condition: string, type: string, from: string): string {
    return serialize(
      xml(
        el.name,
        { type: 'error', id: el.attrs.id, from, to: this.#jid!.toString() },
        xml('error', { type }, xml(condition, { xmlns: NS_STANZA_ERRORS })),
      ),
    )
  }

  #iqError(iq: Element, condition: string, type: string): string {
    return this.#errorXml(iq, condition, type, iq.attrs.to ?? this.#host.domain)
  }

  #onStanza(el: Element): void {
    const name = el.name
    if (name !== 'message' && name !== 'presence' && name !== 'iq') {
      this.#streamError('unsupported-stanza-type') // RFC 6120 §4.9.3.22
      return
    }
    const jid = this.#jid!
    // RFC 6120 §8.1.2.1: the server stamps 'from'; a client may not claim another address.
    const from = el.attrs.from
    if (from !== undefined && !jid.equals(from) && !jid.bare().equals(from)) {
      this.#streamError('invalid-from')
      return
    }
    const stamped = withAttrs(el, { from: jid.toString() })
    for (const intercept of this.#host.interceptors) {
      if (intercept(stamped, this)) return
    }
    const toAttr = el.attrs.to
    const to = toAttr === undefined ? undefined : JID.tryParse(String(toAttr))
    if (toAttr !== undefined && to === undefined) {
      this.#atStep(name, el, () =>
        el.attrs.type === 'error'
          ? undefined
          : this.#errorXml(el, 'jid-malformed', 'modify', this.#host.domain),
      )
      return
    }
    if (name === 'iq') this.#onIq(el, stamped, to)
    else if (name === 'message') this.#onMessage(el, stamped, to)
    else this.#atStep('presence', el) // accepted, never broadcast
  }

  #route(target: Session, stamped: Element): void {
    target.deliver(serialize(stamped))
    this.#host.emit('route', { from: this, to: target, element: stamped })
  }

  #onIq(iq: Element, stamped: Element, to: JID | undefined): void {
    const type = iq.attrs.type
    const domain = this.#host.domain
    const jid = this.#jid!
    const request = type === 'get' || type === 'set'
    if (!request && type !== 'result' && type !== 'error') {
      this.#atStep('iq', iq, () => this.#iqError(iq, 'bad-request', 'modify'))
      return
    }
    if (request && iq.attrs.id === undefined) {
      this.#atStep('iq', iq, () => this.#iqError(iq, 'bad-request', 'modify'))
      return
    }
    // RFC 6120 §10.3.3: no 'to' (or the user's own bare JID): the server answers for the account.
    const forServer = to === undefined || to.equals(domain) || to.equals(jid.bare())
    if (forServer && request && type === 'set' && iq.getChild('session', NS_SESSION)) {
      this.#atStep('session', iq, () =>
        serialize(xml('iq', { type: 'result', id: iq.attrs.id, from: iq.attrs.to })),
      )
      return
    }
    this.#atStep('iq', iq, () => {
      if (forServer) {
        if (!request) return undefined // an answer to nothing we asked
        // XEP-0199 §4.2: a client-to-server ping gets an empty result.
        if (type === 'get' && iq.getChild('ping', NS_PING) !== undefined) {
          return serialize(
            xml('iq', {
              type: 'result',
              id: iq.attrs.id,
              from: iq.attrs.to ?? undefined,
              to: jid.toString(),
            }),
          )
        }
        // RFC 6121 §2.1.3: the roster, which is empty here (the server keeps no rosters).
        if (type === 'get' && iq.getChild('query', NS_ROSTER) !== undefined) {
          return serialize(
            xml(
              'iq',
              { type: 'result', id: iq.attrs.id, to: jid.toString() },
              xml('query', { xmlns: NS_ROSTER }),
            ),
          )
        }
        return this.#iqError(iq, 'service-unavailable', 'cancel')
      }
      const target = to!
      const component = target.domain === domain ? undefined : this.#host.component(target.domain)
      if (component !== undefined) {
        component.deliver(stamped)
        return undefined
      }
      if (target.domain !== domain) {
        // No server-to-server here (RFC 6120 §10.4.3).
        return request ? this.#iqError(iq, 'remote-server-not-found', 'cancel') : undefined
      }
      const session = target.isBare() ? undefined : this.#host.find(target)
      if (session !== undefined) {
        this.#route(session, stamped)
        return undefined
      }
      // RFC 6121 §8.5: an iq to a bare JID is handled by the server for the account, which
      // has nothing to offer; to an unknown full JID it is bounced.
      return request ? this.#iqError(iq, 'service-unavailable', 'cancel') : undefined
    })
  }

  #onMessage(msg: Element, stamped: Element, to: JID | undefined): void {
    const jid = this.#jid!
    const domain = this.#host.domain
    const type = msg.attrs.type ?? 'normal'
    const bounce = (condition: string): string | undefined =>
      // RFC 6120 §8.3.1: never answer an error with an error.
      type === 'error'
        ? undefined
        : this.#errorXml(msg, condition, 'cancel', msg.attrs.to ?? jid.bare().toString())
    this.#atStep('message', msg, () => {
      // RFC 6120 §8.1.1.1: no 'to' means the sender's own bare JID.
      const target = to ?? jid.bare()
      const component = target.domain === domain ? undefined : this.#host.component(target.domain)
      if (component !== undefined) {
        component.deliver(stamped)
        return undefined
      }
      if (target.domain !== domain) return bounce('remote-server-not-found')
      if (target.local === '') return bounce('service-unavailable') // the server takes no messages
      // RFC 6121 §8.5.1: no such user.
      if (this.#host.user(target.local) === undefined) return bounce('service-unavailable')
      if (!target.isBare()) {
        const session = this.#host.find(target)
        if (session !== undefined) {
          this.#route(session, stamped)
          return undefined
        }
        // RFC 6121 §8.5.3.2.1: no such resource: normal and chat go to the bare JID,
        // groupchat is bounced, headline and error are dropped.
        if (type === 'groupchat') return bounce('service-unavailable')
        if (type !== 'normal' && type !== 'chat') return undefined
      }
      // To the bare JID: every online resource (a user offline: dropped, no offline storage).
      for (const session of this.#host.resourcesOf(target.bare())) this.#route(session, stamped)
      return undefined
    })
  }
}
