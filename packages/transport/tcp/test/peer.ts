// A scripted raw XMPP peer for the tests: a TCP server on 127.0.0.1 that records every byte
// it receives, parses what the client sent, and can switch a connection to TLS.
import { readFileSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { Duplex } from 'node:stream'
import { TLSSocket, type TLSSocketOptions } from 'node:tls'
import { StreamParser, type StreamParserHandlers } from '@core/xml'

export type Element = Parameters<StreamParserHandlers['element']>[0]

const certDir = new URL('../../../test/server/certs/', import.meta.url)
const read = (name: string) => readFileSync(new URL(name, certDir))

export const certs = {
  ca: read('ca.crt'),
  serverKey: read('server.key'),
  serverCert: read('server.crt'),
  selfSignedKey: read('selfsigned.key'),
  selfSignedCert: read('selfsigned.crt'),
}

/** Server TLS options: the CA-signed certificate for localhost, example.com, 127.0.0.1. */
export const serverTls: TLSSocketOptions = { key: certs.serverKey, cert: certs.serverCert }
export const selfSignedTls: TLSSocketOptions = {
  key: certs.selfSignedKey,
  cert: certs.selfSignedCert,
}

export const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls'
export const STARTTLS_FEATURES = `<stream:features><starttls xmlns='${NS_TLS}'><required/></starttls></stream:features>`
export const PLAIN_FEATURES =
  "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"

export function header(id = 's1', from = 'localhost'): string {
  return `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='${id}' from='${from}' version='1.0'>`
}

export type PeerEvent =
  | { kind: 'header'; attrs: Record<string, string> }
  | { kind: 'element'; element: Element }
  | { kind: 'end' }
  | { kind: 'closed' }
  | { kind: 'error'; error: Error }

const WAIT_MS = 5_000

/** One accepted TCP connection. */
export class PeerConnection {
  readonly raw: Socket
  /** Where send() writes: the TCP socket, or the TLS socket after startTls(). */
  socket: Socket
  /** Every byte received on the TCP connection. */
  readonly rawIn: Buffer[] = []
  /** Bytes received on the TCP connection once startTls() began (TLS records, or not). */
  readonly rawAfterTls: Buffer[] = []
  /** Application data received over TLS (decrypted). */
  readonly tlsIn: Buffer[] = []
  /** Every parsed event, in order. */
  readonly log: PeerEvent[] = []
  readonly closed: Promise<void>
  tls: TLSSocket | undefined
  #parser: StreamParser
  #tee: Duplex | undefined
  #read = 0
  #wake: (() => void) | undefined

  /** Set when the peer speaks direct TLS: the server side of the handshake. */
  readonly handshake: Promise<Outcome<TLSSocket>> | undefined

  constructor(raw: Socket, directTls?: TLSSocketOptions) {
    this.raw = raw
    this.socket = raw
    this.#parser = this.#newParser()
    raw.on('data', (chunk: Buffer) => {
      this.rawIn.push(chunk)
      if (this.#tee) {
        this.rawAfterTls.push(chunk)
        this.#tee.push(chunk)
      } else this.#parser.write(chunk)
    })
    raw.on('end', () => this.#tee?.push(null))
    // The client may reset the connection (e.g. after rejecting our certificate).
    raw.on('error', () => undefined)
    this.closed = new Promise((resolve) =>
      raw.on('close', () => {
        this.#tee?.destroy()
        this.tls?.destroy()
        this.#push({ kind: 'closed' })
        resolve()
      }),
    )
    this.handshake = directTls ? settle(this.startTls(directTls)) : undefined
  }

  #newParser(): StreamParser {
    return new StreamParser({
      streamStart: (attrs) => this.#push({ kind: 'header', attrs }),
      element: (element) => this.#push({ kind: 'element', element }),
      streamEnd: () => this.#push({ kind: 'end' }),
      error: (error) => this.#push({ kind: 'error', error }),
    })
  }

  #push(event: PeerEvent): void {
    this.log.push(event)
    // Answer the client's </stream:stream> with ours and close, as a server does.
    if (event.kind === 'end' && this.socket.writable) {
      this.socket.write('</stream:stream>')
      this.socket.end()
    }
    this.#wake?.()
  }

  send(data: string | Buffer): void {
    this.socket.write(data)
  }

  /** The next thing the client sent (or the connection closing). */
  async next(): Promise<PeerEvent> {
    const deadline = Date.now() + WAIT_MS
    while (this.#read >= this.log.length) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error('the peer waited in vain for the client')
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    return this.log[this.#read++] as PeerEvent
  }

  async nextHeader(): Promise<Record<string, string>> {
    const event = await this.next()
    if (event.kind !== 'header') throw new Error(`expected a stream header, got ${describe(event)}`)
    return event.attrs
  }

  async nextElement(): Promise<Element> {
    const event = await this.next()
    if (event.kind !== 'element') throw new Error(`expected an element, got ${describe(event)}`)
    return event.element
  }

  /** Events the client produced after the last one read, once the connection closed. */
  async rest(): Promise<PeerEvent[]> {
    await this.closed
    const rest = this.log.slice(this.#read)
    this.#read = this.log.length
    return rest
  }

  /**
   * Switches to TLS as a server, on a tee so that the raw bytes stay observable. Resolves on
   * the handshake, rejects when it fails.
   */
  startTls(options: TLSSocketOptions): Promise<TLSSocket> {
    this.#parser.stop()
    this.#parser = this.#newParser()
    const raw = this.raw
    const tee = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        if (raw.writable) raw.write(chunk, callback)
        else callback()
      },
      final(callback) {
        raw.end()
        callback()
      },
      destroy(error, callback) {
        raw.destroy()
        callback(error)
      },
    })
    this.#tee = tee
    const secure = new TLSSocket(tee, { ...options, isServer: true })
    this.tls = secure
    this.socket = secure as unknown as Socket
    secure.on('data', (chunk: Buffer) => {
      this.tlsIn.push(chunk)
      this.#parser.write(chunk)
    })
    return new Promise((resolve, reject) => {
      secure.once('secure', () => resolve(secure))
      secure.once('error', reject)
      secure.once('close', () => reject(new Error('closed during the TLS handshake')))
    })
  }

  /** Closes the TCP connection at once. */
  destroy(): void {
    this.tls?.destroy()
    this.raw.destroy()
  }
}

function describe(event: PeerEvent): string {
  if (event.kind === 'element') return `<${event.element.name}/>`
  return event.kind
}

/** A listening peer; connections are handed out in order by nextPeer(). */
export class Peer {
  readonly server: Server
  readonly connections: PeerConnection[] = []
  #handed = 0
  #wake: (() => void) | undefined

  private constructor(server: Server, directTls: TLSSocketOptions | undefined) {
    this.server = server
    server.on('connection', (socket) => {
      this.connections.push(new PeerConnection(socket, directTls))
      this.#wake?.()
    })
  }

  /** Listens on 127.0.0.1; with `directTls`, every connection starts with TLS (XEP-0368). */
  static async listen(options: { directTls?: TLSSocketOptions } = {}): Promise<Peer> {
    const server = createServer()
    const peer = new Peer(server, options.directTls)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return peer
  }

  get port(): number {
    const address = this.server.address()
    if (address === null || typeof address === 'string') throw new Error('not listening')
    return address.port
  }

  async nextPeer(): Promise<PeerConnection> {
    const deadline = Date.now() + WAIT_MS
    while (this.#handed >= this.connections.length) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error('no client connected')
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    return this.connections[this.#handed++] as PeerConnection
  }

  async close(): Promise<void> {
    for (const connection of this.connections) connection.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

/** A port on 127.0.0.1 where nothing listens. */
export async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/** True when the bytes are a whole number of TLS records (RFC 8446 §5.1), nothing else. */
export function onlyTlsRecords(bytes: Buffer): boolean {
  let i = 0
  while (i < bytes.length) {
    if (i + 5 > bytes.length) return false
    const type = bytes[i] as number
    if (type < 20 || type > 23 || bytes[i + 1] !== 3) return false
    i += 5 + bytes.readUInt16BE(i + 3)
  }
  return i === bytes.length
}

/** Turns a promise into its outcome, so that a rejection is never left unhandled. */
export type Outcome<T> = { value: T } | { error: unknown }

export function settle<T>(promise: Promise<T>): Promise<Outcome<T>> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  )
}
