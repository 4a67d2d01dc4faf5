import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto'
import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { serialize, StreamParser, type xml } from '@core/xml'

/*
 * A scripted XMPP client for the tests: raw sockets and the core's StreamParser, nothing more,
 * so that the tests see exactly what the server sent.
 */

type Element = ReturnType<typeof xml>

export const NS = {
  stream: 'http://etherx.jabber.org/streams',
  tls: 'urn:ietf:params:xml:ns:xmpp-tls',
  sasl: 'urn:ietf:params:xml:ns:xmpp-sasl',
  bind: 'urn:ietf:params:xml:ns:xmpp-bind',
  session: 'urn:ietf:params:xml:ns:xmpp-session',
  stanzas: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  streams: 'urn:ietf:params:xml:ns:xmpp-streams',
  ping: 'urn:xmpp:ping',
}

const WAIT_MS = 2000

export class RawClient {
  socket: Socket
  /** Every chunk read from the socket, as text, in order (plaintext and decrypted TLS). */
  readonly chunks: string[] = []
  readonly headers: Record<string, string>[] = []
  /** Elements read and not yet taken by next(). */
  readonly queue: Element[] = []
  /** The server closed its stream (`</stream:stream>`). */
  footer = false
  /** Answer the server's `</stream:stream>` with ours, as RFC 6120 §4.4 asks. */
  answerClose = true
  closed = false
  parseError: Error | undefined
  #parser!: StreamParser
  #wake: (() => void) | undefined
  readonly #onData = (chunk: Buffer): void => {
    this.chunks.push(chunk.toString('utf8'))
    this.#parser.write(chunk)
    this.#notify()
  }

  private constructor(socket: Socket) {
    this.socket = socket
    socket.on('data', this.#onData)
    socket.on('error', () => undefined)
    socket.on('close', () => {
      this.closed = true
      this.#notify()
    })
    this.restart()
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = netConnect(port, '127.0.0.1')
      socket.once('error', reject)
      socket.once('connect', () => {
        socket.off('error', reject)
        resolve(new RawClient(socket))
      })
    })
  }

  /** Direct TLS (XEP-0368), checked against `ca` for the name localhost. */
  static connectTls(port: number, ca: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' })
      socket.once('error', reject)
      socket.once('secureConnect', () => {
        socket.off('error', reject)
        resolve(new RawClient(socket))
      })
    })
  }

  /** A fresh parser for a new stream (after STARTTLS or SASL success). */
  restart(): void {
    this.#parser = new StreamParser({
      streamStart: (attrs) => this.headers.push(attrs),
      element: (el) => this.queue.push(el),
      streamEnd: () => {
        this.footer = true
        if (this.answerClose && !this.socket.destroyed) this.socket.end('</stream:stream>')
      },
      error: (err) => {
        this.parseError = err
      },
    })
  }

  #notify(): void {
    const w = this.#wake
    this.#wake = undefined
    w?.()
  }

  /** Resolves when `done()` is true, or when anything arrives (then checks again). */
  async until(done: () => boolean, what: string, timeout = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeout
    while (!done()) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what}`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.#wake = () => {
          clearTimeout(t)
          resolve()
        }
      })
    }
  }

  send(data: string | Element): void {
    this.socket.write(typeof data === 'string' ? data : serialize(data))
  }

  /** Sends a stream header. */
  open(to = 'localhost'): void {
    this.send(
      `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS.stream}' to='${to}' version='1.0'>`,
    )
  }

  async nextHeader(timeout?: number): Promise<Record<string, string>> {
    const n = this.headers.length
    await this.until(() => this.headers.length > n || this.closed, 'a stream header', timeout)
    const h = this.headers[n]
    if (h === undefined) throw new Error('closed before a stream header')
    return h
  }

  /** The next element; throws if the socket closes (or the timeout passes) first. */
  async next(timeout?: number): Promise<Element> {
    await this.until(() => this.queue.length > 0 || this.closed, 'an element', timeout)
    const el = this.queue.shift()
    if (el === undefined) throw new Error('socket closed before an element')
    return el
  }

  /** Resolves when the socket is closed. */
  async waitClosed(timeout?: number): Promise<void> {
    await this.until(() => this.closed, 'the socket to close', timeout)
  }

  /** Waits `ms` and returns what arrived in that time. */
  async idle(ms: number): Promise<Element[]> {
    await new Promise((r) => setTimeout(r, ms))
    return this.queue.splice(0)
  }

  /** Opens a stream and returns the features. */
  async openStream(to?: string): Promise<Element> {
    this.open(to)
    await this.nextHeader()
    const features = await this.next()
    if (features.name !== 'stream:features') throw new Error(`expected features, got ${features}`)
    return features
  }

  /** TLS on the existing socket, checked against `ca` for the name localhost. */
  async upgrade(ca: string, servername = 'localhost'): Promise<void> {
    this.socket.off('data', this.#onData)
    const plain = this.socket
    const secure = await new Promise<Socket>((resolve, reject) => {
      const s = tlsConnect({ socket: plain, ca, servername })
      s.once('error', reject)
      s.once('secureConnect', () => {
        s.off('error', reject)
        resolve(s)
      })
    })
    this.socket = secure
    secure.on('data', this.#onData)
    secure.on('error', () => undefined)
    secure.on('close', () => {
      this.closed = true
      this.#notify()
    })
    this.queue.length = 0
    this.restart()
  }

  /** Opens the first stream, does STARTTLS, and returns the features of the TLS stream. */
  async secure(ca: string): Promise<Element> {
    await this.openStream()
    this.send(`<starttls xmlns='${NS.tls}'/>`)
    const proceed = await this.next()
    if (!proceed.is('proceed', NS.tls)) throw new Error(`expected proceed, got ${proceed}`)
    await this.upgrade(ca)
    return this.openStream()
  }

  /** SASL PLAIN; returns the server's answer (<success/> or <failure/>). */
  async plain(user: string, password: string, authzid = ''): Promise<Element> {
    const data = Buffer.from(`${authzid}\0${user}\0${password}`).toString('base64')
    this.send(`<auth xmlns='${NS.sasl}' mechanism='PLAIN'>${data}</auth>`)
    return this.next()
  }

  /** SASL SCRAM (RFC 5802, client side). */
  async scram(
    user: string,
    password: string,
    hash: 'sha1' | 'sha256' = 'sha1',
  ): Promise<{ result: Element; signatureValid: boolean | undefined }> {
    const mechanism = hash === 'sha1' ? 'SCRAM-SHA-1' : 'SCRAM-SHA-256'
    const gs2 = 'n,,'
    const clientNonce = randomBytes(12).toString('base64')
    const firstBare = `n=${user},r=${clientNonce}`
    const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64')
    this.send(`<auth xmlns='${NS.sasl}' mechanism='${mechanism}'>${b64(gs2 + firstBare)}</auth>`)
    const challenge = await this.next()
    if (!challenge.is('challenge', NS.sasl)) return { result: challenge, signatureValid: undefined }
    const serverFirst = Buffer.from(challenge.getText(), 'base64').toString('utf8')
    const attrs = new Map(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)] as const))
    const nonce = attrs.get('r') ?? ''
    if (!nonce.startsWith(clientNonce)) throw new Error('server nonce does not extend ours')
    const salt = Buffer.from(attrs.get('s') ?? '', 'base64')
    const iterations = Number(attrs.get('i'))
    const salted = pbkdf2Sync(password, salt, iterations, hash === 'sha1' ? 20 : 32, hash)
    const hmac = (key: Buffer, s: string): Buffer => createHmac(hash, key).update(s).digest()
    const clientKey = hmac(salted, 'Client Key')
    const storedKey = createHash(hash).update(clientKey).digest()
    const withoutProof = `c=${b64(gs2)},r=${nonce}`
    const authMessage = `${firstBare},${serverFirst},${withoutProof}`
    const signature = hmac(storedKey, authMessage)
    const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!))
    this.send(`<response xmlns='${NS.sasl}'>${b64(`${withoutProof},p=${b64(proof)}`)}</response>`)
    const result = await this.next()
    if (!result.is('success', NS.sasl)) return { result, signatureValid: undefined }
    const expected = `v=${b64(hmac(hmac(salted, 'Server Key'), authMessage))}`
    const text = result.getText()
    const got = text === '' ? '' : Buffer.from(text, 'base64').toString('utf8')
    return { result, signatureValid: got === '' ? undefined : got === expected }
  }

  /** Binds a resource and returns the iq result (or error). */
  async bind(resource?: string, id = 'bind1'): Promise<Element> {
    const r = resource === undefined ? '' : `<resource>${resource}</resource>`
    this.send(`<iq type='set' id='${id}'><bind xmlns='${NS.bind}'>${r}</bind></iq>`)
    return this.next()
  }

  /** STARTTLS, SCRAM-SHA-1, restart and bind; returns the bound full JID. */
  async login(ca: string, user: string, password: string, resource?: string): Promise<string> {
    await this.secure(ca)
    const { result } = await this.scram(user, password)
    if (!result.is('success', NS.sasl)) throw new Error(`login failed: ${result}`)
    this.restart()
    await this.openStream()
    const bound = await this.bind(resource)
    const jid = bound.getChild('bind', NS.bind)?.getChildText('jid')
    if (!jid) throw new Error(`bind failed: ${bound}`)
    return jid
  }

  destroy(): void {
    this.socket.destroy()
  }
}

/** The condition element's name inside an <error/> or <failure/> or <stream:error/>. */
export function conditionOf(el: Element | undefined): string | undefined {
  const holder = el?.getChild('error') ?? el
  return holder?.getChildElements()[0]?.name
}
