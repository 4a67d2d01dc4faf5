import type { Element } from 'ltx'
import { StreamParser } from './stream-parser.js'
import type { ConnectTarget, Transport, TransportEvents, TransportFactory } from './transport.js'
import { escapeAttr } from './xml-serializer.js'

/**
 * An in-memory peer for unit tests and plugin authors: the far end of a transport that a
 * test scripts by hand. It parses what the connection wrote, so tests assert what the peer
 * received. Not a server: a scripted one lives in its own package.
 */
export class MemoryPeer {
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
  #parser: StreamParser | undefined
  #headers: Record<string, string>[] = []
  #elements: Element[] = []
  #ended = false
  readonly #waiting = new Set<() => void>()
  #blocked = false

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
    const parser = new StreamParser(
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
      { maxStanzaSize: 64 * 1024 * 1024 },
    )
    this.#parser = parser
  }

  /** Sends raw bytes or text to the connection, as they are. */
  send(data: string | Uint8Array): void {
    this.#events?.data(data)
  }

  /** Opens the peer's stream: the header, then optional features (inner XML). */
  open(options: { features?: string; id?: string; from?: string; xmlns?: string } = {}): void {
    const from = options.from ?? 'example.com'
    this.send(
      `<?xml version='1.0'?><stream:stream xmlns='${escapeAttr(options.xmlns ?? 'jabber:client')}' xmlns:stream='http://etherx.jabber.org/streams' id='${escapeAttr(options.id ?? 's1')}' from='${escapeAttr(from)}' version='1.0'>`,
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
