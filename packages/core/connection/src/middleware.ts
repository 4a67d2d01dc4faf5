import type { Element } from '@core/xml'
import { PluginError } from '@core/errors'
import { JID } from '@core/jid'

/** RFC 6120 §8: the stanza kinds; any other top-level element is a nonza. */
export type StanzaName = 'message' | 'presence' | 'iq'
export type ElementKind = 'stanza' | 'nonza'

function isStanzaName(name: string): name is StanzaName {
  return name === 'message' || name === 'presence' || name === 'iq'
}

export type Next = () => void | Promise<void>
export type Middleware<C> = (ctx: C, next: Next) => void | Promise<void>

/** What an inbound middleware sees: one element read from the stream. */
export class InboundContext {
  readonly element: Element
  readonly kind: ElementKind
  readonly name: string
  /** Set by whoever takes charge (RFC 6120 §8.4: else an iq get/set gets service-unavailable). */
  handled = false
  /** The stream it was read from (its handling may complete after that stream ended). */
  readonly stream: number
  #from: JID | null | undefined = null
  #to: JID | null | undefined = null

  constructor(element: Element, name: string, stream = 0) {
    this.element = element
    this.name = name
    this.kind = isStanzaName(name) ? 'stanza' : 'nonza'
    this.stream = stream
  }

  /** @internal the connection validated `from` already. */
  presetFrom(from: JID | undefined): void {
    this.#from = from
  }

  /** Parsed on first access; throws JIDError when invalid. */
  get from(): JID | undefined {
    if (this.#from === null) this.#from = parseAddress(this.element.attrs.from)
    return this.#from
  }

  /** Parsed on first access; throws JIDError when invalid. */
  get to(): JID | undefined {
    if (this.#to === null) this.#to = parseAddress(this.element.attrs.to)
    return this.#to
  }

  /** '' when absent. */
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
  readonly text: string
}

/** What an outbound middleware sees: one element on its way to the transport. */
export class OutboundContext {
  /** A middleware may replace it before calling next(). */
  element: Element
  readonly kind: ElementKind
  /** Sent by negotiation, which may write before online. */
  readonly negotiation: boolean
  /** After next(): serialized and queued for the next write (send() settles once written). */
  queued = false
  /** After next(): the exact XML that was queued. */
  data: string | undefined = undefined
  /** After next(): the write holding `data` at `offset` (keep it, not a string per element). */
  batch: WrittenText | undefined = undefined
  /** -1 when each element is its own write (WebSocket framing). */
  offset = -1
  /** Set by a middleware that tracks delivery: send() settles with it instead. */
  delivery: Promise<void> | undefined = undefined

  constructor(element: Element, negotiation = false) {
    this.element = element
    this.kind = isStanzaName(element.name) ? 'stanza' : 'nonza'
    this.negotiation = negotiation
  }
}

/**
 * Middleware composed once, ending with `terminal` (a method of `self`); a layer without
 * next() stops the element, next() twice throws. A run allocates only each entered layer's
 * `next` (it may be called after an await, so it must know its element).
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
