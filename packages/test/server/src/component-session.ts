import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Socket } from 'node:net'
import { JID } from '@core/jid'
import {
  NS_STREAM,
  NS_STREAM_ERRORS,
  serialize,
  STREAM_FOOTER,
  StreamParser,
  type StreamParserOptions,
  streamHeader,
  xml,
} from '@core/xml'

type Element = ReturnType<typeof xml>

/** XEP-0114 §3: the namespace of a component's stream. */
export const NS_COMPONENT = 'jabber:component:accept'

const LINGER_MS = 1000

/** What a component session needs from its server. @internal */
export interface ComponentHost {
  readonly limits: StreamParserOptions
  /** The secret of a configured component, or undefined for an unknown name. */
  secretOf(domain: string): string | undefined
  /** Registers the component under its domain; false when that name is connected already. */
  attach(session: ComponentSession): boolean
  detach(session: ComponentSession): void
  /** Delivers a stanza from the component to a client (by full or bare JID). */
  route(session: ComponentSession, stanza: Element, to: JID): void
  /** `outcome`: 'online', 'closed', or the stream error condition the server sent. */
  event(domain: string, outcome: string): void
}

/**
 * One external component's connection (XEP-0114): the stream in jabber:component:accept,
 * the handshake, then stanzas routed between the component and the server's clients.
 * @internal
 */
export class ComponentSession {
  readonly #host: ComponentHost
  readonly #socket: Socket
  readonly #streamId = randomBytes(8).toString('hex')
  readonly #parser: StreamParser
  #domain: string | undefined
  #online = false
  #done = false
  /** Every stanza the component sent once online. */
  readonly received: Element[] = []

  constructor(host: ComponentHost, socket: Socket) {
    this.#host = host
    this.#socket = socket
    this.#parser = new StreamParser(
      {
        streamStart: (attrs) => this.#onHeader(attrs),
        element: (element) => this.#onElement(element),
        streamEnd: () => this.#end(),
        error: (error) => this.close(error.condition ?? 'bad-format'),
      },
      host.limits,
    )
    socket.on('data', (chunk: Buffer) => this.#parser.write(chunk))
    socket.on('error', () => socket.destroy())
    socket.on('close', () => this.#closed())
  }

  /** The component's domain once it opened its stream. */
  get domain(): string | undefined {
    return this.#domain
  }

  get online(): boolean {
    return this.#online
  }

  /** Writes a routed stanza to the component. */
  deliver(stanza: Element): void {
    if (this.#online && !this.#done) this.#socket.write(serialize(stanza))
  }

  /** Destroys the socket without a word (a network loss, as the component sees it). */
  drop(): void {
    this.#done = true
    this.#parser.stop()
    this.#socket.destroy()
  }

  /** Ends the stream with a stream error (RFC 6120 §4.9), or cleanly without one. */
  close(condition?: string): void {
    if (this.#done) return
    this.#done = true
    this.#parser.stop()
    const error =
      condition === undefined
        ? ''
        : serialize(xml('stream:error', null, xml(condition, { xmlns: NS_STREAM_ERRORS })))
    this.#socket.end(error + STREAM_FOOTER)
    const timer = setTimeout(() => this.#socket.destroy(), LINGER_MS)
    timer.unref()
    if (condition !== undefined) {
      this.#host.event(this.#domain ?? '', condition)
    }
  }

  #onHeader(attrs: Record<string, string>): void {
    const to = attrs.to ?? ''
    this.#domain = to
    // The header goes first, so that a stream error after it is well-formed (RFC 6120 §4.9.1.1).
    this.#socket.write(
      streamHeader({
        xmlns: NS_COMPONENT,
        'xmlns:stream': NS_STREAM,
        id: this.#streamId,
        from: to,
      }),
    )
    if (attrs.xmlns !== NS_COMPONENT) {
      this.close('invalid-namespace')
      return
    }
    // XEP-0114 §3: a name the server does not serve as a component.
    if (this.#host.secretOf(to) === undefined) {
      this.close('host-unknown')
      return
    }
  }

  #onElement(element: Element): void {
    if (this.#done) return
    if (!this.#online) {
      if (element.name !== 'handshake') {
        this.close('not-authorized')
        return
      }
      const secret = this.#host.secretOf(this.#domain ?? '') ?? ''
      const expected = createHash('sha1')
        .update(this.#streamId + secret, 'utf8')
        .digest()
      const given = Buffer.from(element.getText(), 'hex')
      const valid = given.length === expected.length && timingSafeEqual(given, expected)
      if (!valid) {
        this.close('not-authorized')
        return
      }
      // XEP-0114 §3: a second connection under a connected name.
      if (!this.#host.attach(this)) {
        this.close('conflict')
        return
      }
      this.#online = true
      this.#socket.write('<handshake/>')
      this.#host.event(this.#domain ?? '', 'online')
      return
    }
    if (element.name !== 'message' && element.name !== 'presence' && element.name !== 'iq') {
      this.close('unsupported-stanza-type')
      return
    }
    this.received.push(element)
    const from = JID.tryParse(element.attrs.from ?? '')
    if (from === undefined || from.domain !== this.#domain) {
      this.close('invalid-from')
      return
    }
    const to = JID.tryParse(element.attrs.to ?? '')
    if (to === undefined) {
      this.close('improper-addressing')
      return
    }
    this.#host.route(this, element, to)
  }

  #end(): void {
    if (this.#done) return
    this.#done = true
    this.#socket.end(STREAM_FOOTER)
  }

  #closed(): void {
    this.#done = true
    this.#parser.stop()
    if (this.#online) {
      this.#online = false
      this.#host.detach(this)
      this.#host.event(this.#domain ?? '', 'closed')
    }
  }
}
