import {
  type AnyPlugin,
  type ApisOf,
  type Connection,
  type ConnectionOptions,
  type ConnectTarget,
  createConnection,
  type Framing,
  type StreamReader,
  type Transport,
  type TransportEvents,
  type TransportFactory,
  xmlStreamFraming,
} from '@core/connection'
import { type Element, escapeAttr, NS_STREAM, StreamParser, serialize } from '@core/xml'

/** RFC 7395 §3.3.2: the namespace of `<open/>` and `<close/>`. */
const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing'

export interface MemoryPeerOptions {
  /**
   * The framing both sides speak: `xmlStreamFraming` (RFC 6120, the default) or
   * `@transport/ws`'s `websocketFraming` (RFC 7395: `<open/>`/`<close/>`, one element per
   * message).
   */
  framing?: Framing
}

/**
 * An in-memory peer for unit tests and plugin authors: the far end of a transport that a
 * test scripts by hand. It parses what the connection wrote, so tests assert what the peer
 * received. Not a server: a scripted one lives in its own package.
 */
export class MemoryPeer {
  /** The framing of the transport this peer is the far end of. */
  readonly framing: Framing
  /** What the connection writes to close its stream in this framing. */
  readonly closeMarker: string
  /** Everything the connection wrote, as written (one entry per write). */
  readonly written: string[] = []
  /** Targets of every connect() the connection made (redirects show up here). */
  readonly targets: ConnectTarget[] = []
  /** When false, connect() rejects. */
  accept = true
  /** When true, connect() never settles (test connect timeouts). */
  hang = false
  /** What the transport reports as `secure` (pretend TLS, to test TLS-only paths). */
  secure = false
  /** Answer the connection's `</stream:stream>` with ours, as a server does. */
  answerClose = true
  /** Whether the connection asked the transport to stop reading (inbound backpressure). */
  paused = false
  /** How many times the connection paused the transport. */
  pauses = 0
  #events: TransportEvents | undefined
  #transport: MemoryTransport | undefined
  #parser: StreamReader | undefined
  #headers: Record<string, string>[] = []
  #elements: Element[] = []
  #ended = false
  readonly #waiting = new Set<() => void>()
  #blocked = false

  constructor(options: MemoryPeerOptions = {}) {
    this.framing = options.framing ?? xmlStreamFraming
    this.closeMarker = this.framing.close
  }

  /** Whether this peer speaks RFC 7395 framing (one element per message). */
  get messageFramed(): boolean {
    return !this.framing.batch
  }

  /** The factory to give to createConnection({ transport }). */
  readonly transport: TransportFactory = () => {
    const transport = new MemoryTransport(this)
    return transport
  }

  /** @internal called by MemoryTransport */
  attach(
    transport: MemoryTransport,
    target: ConnectTarget,
    events: TransportEvents,
  ): Promise<void> {
    this.targets.push(target)
    if (this.hang) return new Promise(() => undefined)
    if (!this.accept) return Promise.reject(new Error('connection refused'))
    this.#transport = transport
    this.#events = events
    this.#ended = false
    this.#blocked = false
    this.paused = false
    this.#headers = []
    this.#elements = []
    this.restart()
    return Promise.resolve()
  }

  /** @internal */
  receive(transport: MemoryTransport, data: string): boolean {
    if (transport !== this.#transport) return false
    this.written.push(data)
    this.#parser?.write(data)
    this.#wake()
    return !this.#blocked
  }

  /** @internal */
  ended(transport: MemoryTransport): void {
    if (transport !== this.#transport) return
    this.#ended = true
    this.#wake()
    this.close()
  }

  /** Expect a new stream header from the connection (after STARTTLS / SASL success). */
  restart(): void {
    this.#parser?.stop()
    const parser = this.framing.reader(
      {
        streamStart: (attrs) => {
          this.#headers.push(attrs)
          this.#wake()
        },
        element: (element) => {
          this.#elements.push(element)
          this.#wake()
        },
        streamEnd: () => {
          this.#ended = true
          this.#wake()
          if (this.answerClose) queueMicrotask(() => this.send('</stream:stream>'))
        },
        error: (error) => {
          throw error
        },
      },
      'jabber:client',
      { maxStanzaSize: 64 * 1024 * 1024 },
    )
    this.#parser = parser
  }

  /**
   * Sends XML to the connection. Over the XML stream framing, the data goes as it is (one
   * chunk). Over a message framing (RFC 7395), complete elements are sent one message each
   * (a `</stream:stream>` becomes `<close/>`); data that is not a sequence of complete
   * elements (bytes, a fragment, malformed XML) goes as one message, as it is.
   */
  send(data: string | Uint8Array): void {
    if (this.framing.batch || typeof data !== 'string') {
      this.#events?.data(data)
      return
    }
    for (const message of splitMessages(data)) this.#events?.data(message)
  }

  /** Sends exactly this data as one chunk or message, whatever the framing. */
  sendRaw(data: string | Uint8Array): void {
    this.#events?.data(data)
  }

  /** Opens the peer's stream: the header, then optional features (inner XML). */
  open(options: { features?: string; id?: string; from?: string; xmlns?: string } = {}): void {
    const from = escapeAttr(options.from ?? 'example.com')
    const id = escapeAttr(options.id ?? 's1')
    if (!this.framing.batch) {
      this.sendRaw(`<open xmlns='${NS_FRAMING}' id='${id}' from='${from}' version='1.0'/>`)
      if (options.features !== undefined)
        this.sendRaw(
          `<stream:features xmlns:stream='${NS_STREAM}'>${options.features}</stream:features>`,
        )
      return
    }
    this.send(
      `<?xml version='1.0'?><stream:stream xmlns='${escapeAttr(options.xmlns ?? 'jabber:client')}' xmlns:stream='http://etherx.jabber.org/streams' id='${id}' from='${from}' version='1.0'>`,
    )
    if (options.features !== undefined)
      this.send(`<stream:features>${options.features}</stream:features>`)
  }

  /** Closes the transport from the peer's side (like a dropped socket when `error` is given). */
  close(error?: Error): void {
    const events = this.#events
    this.#events = undefined
    this.#transport = undefined
    events?.close(error)
  }

  /** Makes write() return false (backpressure) until drain(). */
  block(): void {
    this.#blocked = true
  }

  drain(): void {
    this.#blocked = false
    this.#events?.drain()
  }

  get connected(): boolean {
    return this.#transport !== undefined
  }

  /** Whether the connection closed its stream (`</stream:stream>`) or its transport. */
  get streamEnded(): boolean {
    return this.#ended
  }

  /** The next stream header the connection sent. */
  async nextHeader(timeout = 2000): Promise<Record<string, string>> {
    await this.#until(() => this.#headers.length > 0, timeout, 'a stream header')
    return this.#headers.shift() as Record<string, string>
  }

  /** The next top-level element the connection sent. */
  async nextElement(timeout = 2000): Promise<Element> {
    await this.#until(() => this.#elements.length > 0, timeout, 'an element')
    return this.#elements.shift() as Element
  }

  /** Resolves once the connection ended its stream or transport. */
  async waitForEnd(timeout = 2000): Promise<void> {
    await this.#until(() => this.#ended, timeout, 'the end of the stream')
  }

  /** Elements received and not yet taken with nextElement(). */
  get queued(): readonly Element[] {
    return this.#elements
  }

  #wake(): void {
    const waiting = [...this.#waiting]
    this.#waiting.clear()
    for (const wake of waiting) wake()
  }

  async #until(ready: () => boolean, timeout: number, what: string): Promise<void> {
    const deadline = Date.now() + timeout
    while (!ready()) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`MemoryPeer: waited ${timeout} ms for ${what}`)
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer)
          this.#waiting.delete(wake)
          resolve()
        }
        const timer = setTimeout(wake, left)
        this.#waiting.add(wake)
      })
    }
  }
}

/** The connection's side of a MemoryPeer. */
export class MemoryTransport implements Transport {
  #peer: MemoryPeer
  #events: TransportEvents | undefined

  constructor(peer: MemoryPeer) {
    this.#peer = peer
  }

  get secure(): boolean {
    return this.#peer.secure
  }

  get framing(): Framing {
    return this.#peer.framing
  }

  connect(target: ConnectTarget, events: TransportEvents): Promise<void> {
    this.#events = events
    return this.#peer.attach(this, target, events)
  }

  write(data: string): boolean {
    return this.#peer.receive(this, data)
  }

  end(): void {
    // Like a socket: our FIN, the peer closes too, then the close event (asynchronously).
    queueMicrotask(() => this.#peer.ended(this))
  }

  destroy(): void {
    const events = this.#events
    this.#events = undefined
    if (events) queueMicrotask(() => this.#peer.ended(this))
  }

  pause(): void {
    this.#peer.paused = true
    this.#peer.pauses++
  }

  resume(): void {
    this.#peer.paused = false
  }
}

/**
 * Splits XML into one message per complete top-level element (RFC 7395 §3.3.3), each with
 * the namespaces it relied on declared; `</stream:stream>` becomes `<close/>`. Anything
 * else is returned whole, as one message.
 */
function splitMessages(data: string): string[] {
  const messages: string[] = []
  let ok = true
  const parser = new StreamParser(
    {
      streamStart: () => undefined,
      element: (element) => {
        if (element.attrs.xmlns === undefined && !element.name.includes(':'))
          element.attrs.xmlns = 'jabber:client'
        if (element.name.startsWith('stream:')) element.attrs['xmlns:stream'] = NS_STREAM
        messages.push(serialize(element))
      },
      streamEnd: () => messages.push(`<close xmlns='${NS_FRAMING}'/>`),
      error: () => {
        ok = false
      },
    },
    { maxStanzaSize: 64 * 1024 * 1024 },
  )
  parser.write(`<stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}'>`)
  parser.write(data)
  if (!ok || (!parser.betweenElements && !parser.stopped) || messages.length === 0) return [data]
  return messages
}

/**
 * A connection brought online against a fresh MemoryPeer (domain `example.com`, empty
 * stream features): the usual start of a plugin's unit test.
 */
export async function connectToMemoryPeer<const T extends readonly AnyPlugin[] = []>(
  plugins?: T,
  options: Partial<ConnectionOptions<T>> & MemoryPeerOptions = {},
): Promise<{ peer: MemoryPeer; conn: Connection<ApisOf<T>> }> {
  const { framing, ...rest } = options
  const peer = new MemoryPeer(framing ? { framing } : {})
  const conn = createConnection({
    transport: peer.transport,
    domain: 'example.com',
    ...(plugins ? { plugins } : {}),
    ...rest,
  } as ConnectionOptions<T>)
  const connecting = conn.connect()
  await peer.nextHeader()
  peer.open({ features: '' })
  await connecting
  return { peer, conn }
}
