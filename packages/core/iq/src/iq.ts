import type { Element } from '@core/xml'
import { AbortError, ConnectionError, StanzaError, TimeoutError } from '@core/errors'
import { JID } from '@core/jid'
import type { Connection } from '@core/connection'
import type { InboundContext, Next } from '@core/connection'
import { NS_STANZA_ERRORS } from '@core/xml'
import { definePlugin, type PluginContext } from '@core/connection'
import type { Iq } from '@core/connection'

export interface RequestOptions {
  /** Milliseconds before the request fails with TimeoutError. Default: the plugin's `timeout`. */
  timeout?: number
  /** Aborting it fails the request with AbortError (a late answer is then ignored). */
  signal?: AbortSignal
}

export interface IqApi {
  /**
   * Sends an iq get/set and resolves with the result. Rejects with StanzaError on
   * `type=error`, TimeoutError, AbortError, or ConnectionError when the session ends.
   * An `id` is added when the element has none.
   */
  request(iq: Element, options?: RequestOptions): Promise<Iq>
  /** Requests in flight. */
  readonly pending: number
}

interface Pending {
  to: string | undefined
  resolve: (iq: Iq) => void
  reject: (error: Error) => void
  timer: ReturnType<typeof setTimeout>
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
}

/** Runs before other inbound middleware so that answers are taken first. */
const PRIORITY = -100

/**
 * IQ request/response (RFC 6120 §8.2.3). Answers are matched by `id` and by sender: a
 * reply from anyone but the addressee is not taken as the answer (§8.1.2.1: a request with
 * no `to` or to our bare JID may be answered with no `from`).
 */
export const iq = definePlugin({
  name: 'iq',
  options: { timeout: 30_000 },
  setup(ctx, options): IqApi {
    return new IqRequests(ctx, options)
  },
})

/**
 * The API of the iq plugin, one per connection. A class rather than an object literal: the
 * literal had a getter (`pending`), which puts it in dictionary mode, and a closure per
 * method; an instance keeps its state in fields and shares its methods on the prototype
 * (idle connections add up). Call `request` on the API (`conn.plugins.iq.request(...)`).
 */
class IqRequests implements IqApi {
  readonly #connection: Connection
  readonly #options: { timeout: number }
  /** Requests in flight by id. Created by the first request: an idle client may make none. */
  #pending: Map<string, Pending> | undefined = undefined
  #counter = 0
  /** Start of the ids we make; drawn at the first id made. */
  #prefix: string | undefined = undefined

  constructor(ctx: PluginContext, options: { timeout: number }) {
    this.#connection = ctx.connection
    this.#options = options
    // The session's end fails every request at once with its cause (a StreamError with its
    // condition, a drop, the app's own stop), not a timeout later.
    ctx.hooks.on('session-end', ({ error }) => {
      this.#failAll(
        error ?? new ConnectionError('stopped', 'the connection was closed before the answer came'),
      )
    })
    ctx.onDispose(() =>
      this.#failAll(new ConnectionError('disposed', 'the connection was disposed')),
    )
    ctx.inbound((c, next) => this.#onInbound(c, next), { priority: PRIORITY })
  }

  get pending(): number {
    return this.#pending?.size ?? 0
  }

  request(request: Element, requestOptions: RequestOptions = {}): Promise<Iq> {
    const type = request.attrs.type
    if (request.name !== 'iq' || (type !== 'get' && type !== 'set')) {
      return Promise.reject(
        new TypeError('request() takes an <iq type="get"/> or <iq type="set"/>'),
      )
    }
    const { signal } = requestOptions
    if (signal?.aborted) return Promise.reject(new AbortError('request aborted', signal.reason))
    this.#pending ??= new Map()
    const pending = this.#pending
    let id = request.attrs.id as string | undefined
    if (!id || pending.has(id)) {
      this.#prefix ??= Math.random().toString(36).slice(2, 8)
      id = `${this.#prefix}${(this.#counter++).toString(36)}`
      request.attrs.id = id
    }
    const key = id
    const timeout = requestOptions.timeout ?? this.#options.timeout
    return new Promise<Iq>((resolve, reject) => {
      const entry: Pending = {
        to: request.attrs.to as string | undefined,
        resolve,
        reject,
        signal,
        onAbort: undefined,
        timer: setTimeout(() => {
          this.#settle(key, entry)
          reject(new TimeoutError(`no answer to iq ${key} within ${timeout} ms`))
        }, timeout),
      }
      if (signal) {
        entry.onAbort = () => {
          this.#settle(key, entry)
          reject(new AbortError('request aborted', signal.reason))
        }
        signal.addEventListener('abort', entry.onAbort, { once: true })
      }
      pending.set(key, entry)
      this.#connection.send(request).catch((error: unknown) => {
        if (pending.get(key) !== entry) return
        this.#settle(key, entry)
        reject(error)
      })
    })
  }

  #onInbound(c: InboundContext, next: Next): void | Promise<void> {
    if (c.name !== 'iq') return next()
    const type = c.element.attrs.type
    if (type !== 'result' && type !== 'error') return next()
    const id = c.element.attrs.id
    const entry = typeof id === 'string' ? this.#pending?.get(id) : undefined
    if (!entry || !fromMatches(entry.to, c.element.attrs.from, this.#connection.jid)) return next()
    c.handled = true
    this.#settle(id as string, entry)
    if (type === 'result') entry.resolve(c.element as Iq)
    else entry.reject(stanzaErrorOf(c.element))
  }

  #settle(id: string, entry: Pending): void {
    this.#pending?.delete(id)
    clearTimeout(entry.timer)
    if (entry.onAbort) entry.signal?.removeEventListener('abort', entry.onAbort)
  }

  #failAll(error: Error): void {
    const pending = this.#pending
    if (!pending) return
    for (const [id, entry] of pending) {
      this.#settle(id, entry)
      entry.reject(error)
    }
  }
}

/**
 * RFC 6120 §8.1.2.1 / §10.3.3: the answer to a request addressed to X comes from X. A
 * request with no `to` goes to our own account: the answer has no `from`, or our bare or
 * full JID.
 */
function fromMatches(to: string | undefined, from: unknown, self: JID | undefined): boolean {
  if (from === undefined || from === null || from === '') {
    return to === undefined || self?.bare().equals(to) === true
  }
  const sender = JID.tryParse(String(from))
  if (!sender) return false
  if (to === undefined)
    return self !== undefined && (sender.equals(self) || sender.equals(self.bare()))
  return sender.equals(to)
}

function stanzaErrorOf(element: Element): StanzaError {
  const error = element.getChild('error')
  let condition = 'undefined-condition'
  let text: string | undefined
  for (const child of error?.getChildElements() ?? []) {
    if (child.attrs.xmlns !== NS_STANZA_ERRORS) continue
    if (child.getName() === 'text') text = child.getText()
    else condition = child.getName()
  }
  const type = typeof error?.attrs.type === 'string' ? (error.attrs.type as string) : 'cancel'
  return new StanzaError(condition, type, { text, element })
}
