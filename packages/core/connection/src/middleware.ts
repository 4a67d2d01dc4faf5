import type { Element } from '@core/xml'
import { PluginError } from '@core/errors'
import { JID } from '@core/jid'

/** RFC 6120 §8: the three stanza kinds. Every other top-level element is a nonza. */
export type StanzaName = 'message' | 'presence' | 'iq'
export type ElementKind = 'stanza' | 'nonza'

export function isStanzaName(name: string): name is StanzaName {
  return name === 'message' || name === 'presence' || name === 'iq'
}

export type Next = () => void | Promise<void>
export type Middleware<C> = (ctx: C, next: Next) => void | Promise<void>

/** What an inbound middleware sees: one element read from the stream. */
export class InboundContext {
  readonly element: Element
  readonly kind: ElementKind
  /** Local name of the element (`message`, `iq`, `r`, ...). */
  readonly name: string
  /**
   * Set by whoever takes charge of the element (the IQ caller, a router handler). An iq
   * get/set that nobody handled is answered service-unavailable (RFC 6120 §8.4).
   */
  handled = false
  /**
   * Which stream (connection attempt) of the connection the element was read from: its
   * handling may complete after that stream ended (stream management counts it for the
   * session it came from).
   */
  readonly stream: number
  #from: JID | null | undefined = null
  #to: JID | null | undefined = null

  constructor(element: Element, name: string, stream = 0) {
    this.element = element
    this.name = name
    this.kind = isStanzaName(name) ? 'stanza' : 'nonza'
    this.stream = stream
  }

  /** @internal the connection validated `from` already (see Connection#process). */
  presetFrom(from: JID | undefined): void {
    this.#from = from
  }

  /** The sender, parsed on first access (never eagerly). Throws JIDError when invalid. */
  get from(): JID | undefined {
    if (this.#from === null) this.#from = parseAddress(this.element.attrs.from)
    return this.#from
  }

  /** The recipient, parsed on first access. Throws JIDError when invalid. */
  get to(): JID | undefined {
    if (this.#to === null) this.#to = parseAddress(this.element.attrs.to)
    return this.#to
  }

  /** The `type` attribute, as a string ('' when absent). */
  get type(): string {
    const t = this.element.attrs.type
    return typeof t === 'string' ? t : ''
  }
}

function parseAddress(value: unknown): JID | undefined {
  if (value === undefined || value === null) return undefined
  return JID.parse(String(value))
}

/** The text of one write to the transport (see OutboundContext.batch). */
export interface WrittenText {
  /** Every element of this write, in order (with any stream header or footer among them). */
  readonly text: string
}

/** What an outbound middleware sees: one element on its way to the transport. */
export class OutboundContext {
  /** The element to write. A middleware may replace it before calling next(). */
  element: Element
  readonly kind: ElementKind
  /** Sent by stream negotiation (a feature's nc.send), which may write before online. */
  readonly negotiation: boolean
  /**
   * After next(): true when the element was serialized and queued for the transport's next
   * write. send() settles once that write happened (or rejects if the stream ended first).
   */
  queued = false
  /** After next(): the exact XML that was queued. */
  data: string | undefined = undefined
  /**
   * After next(): the write this element is part of. Its `text` holds `data` at `offset` (a
   * plugin that keeps what was written, stream management, keeps that text and a position
   * instead of a string per element). `offset` is -1 where each element is its own write
   * (WebSocket framing).
   */
  batch: WrittenText | undefined = undefined
  /** After next(): where `data` starts in `batch.text`; -1 when it is not part of one text. */
  offset = -1
  /**
   * A middleware that tracks delivery (stream management) sets this; send() then settles
   * when it settles instead of when the element was written.
   */
  delivery: Promise<void> | undefined = undefined

  constructor(element: Element, negotiation = false) {
    this.element = element
    this.kind = isStanzaName(element.name) ? 'stanza' : 'nonza'
    this.negotiation = negotiation
  }
}

/**
 * Middleware composed once (when the registry freezes). A run goes through the layers in
 * order and ends with `terminal` (a method of `self`); a layer that does not call next()
 * stops the element there. Calling next() twice from one layer throws a PluginError.
 *
 * A run allocates only the `next` of each layer it enters (next() takes no argument and may
 * be called after an await, so it must know its element): no dispatcher per element.
 */
export class Pipeline<C, T> {
  readonly #fns: readonly Middleware<C>[]
  readonly #owners: readonly string[]
  readonly #terminal: (this: T, ctx: C) => void | Promise<void>
  readonly #self: T

  constructor(
    layers: readonly { fn: Middleware<C>; plugin: string }[],
    terminal: (this: T, ctx: C) => void | Promise<void>,
    self: T,
  ) {
    this.#fns = layers.map((l) => l.fn)
    this.#owners = layers.map((l) => l.plugin)
    this.#terminal = terminal
    this.#self = self
  }

  run(ctx: C): void | Promise<void> {
    return this.#from(ctx, 0)
  }

  #from(ctx: C, index: number): void | Promise<void> {
    const fn = this.#fns[index]
    if (!fn) return this.#terminal.call(this.#self, ctx)
    let called = false
    return fn(ctx, () => {
      if (called) {
        const plugin = this.#owners[index] as string
        const message = `middleware of plugin "${plugin}" called next() more than once for one element`
        throw new PluginError('next-called-twice', plugin, message)
      }
      called = true
      return this.#from(ctx, index + 1)
    })
  }
}
