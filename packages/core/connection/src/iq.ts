import type { Element } from 'ltx'
import { AbortError, ConnectionError, StanzaError, TimeoutError } from './errors.js'
import { JID } from './jid.js'
import type { InboundContext } from './middleware.js'
import { NS_STANZA_ERRORS } from './namespaces.js'
import { definePlugin } from './plugin.js'
import type { Iq } from './stanza.js'

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
    const pending = new Map<string, Pending>()
    let counter = 0
    const prefix = Math.random().toString(36).slice(2, 8)

    const settle = (id: string, entry: Pending) => {
      pending.delete(id)
      clearTimeout(entry.timer)
      if (entry.onAbort) entry.signal?.removeEventListener('abort', entry.onAbort)
    }

    const failAll = (error: Error) => {
      for (const [id, entry] of pending) {
        settle(id, entry)
        entry.reject(error)
      }
    }

    ctx.hooks.on('session-end', ({ error }) => {
      failAll(
        new ConnectionError('disconnected', 'the session ended before the answer came', error),
      )
    })
    ctx.onDispose(() => failAll(new ConnectionError('disconnected', 'the connection was disposed')))

    ctx.inbound(
      (c: InboundContext, next) => {
        if (c.name !== 'iq') return next()
        const type = c.element.attrs.type
        if (type !== 'result' && type !== 'error') return next()
        const id = c.element.attrs.id
        const entry = typeof id === 'string' ? pending.get(id) : undefined
        if (!entry || !fromMatches(entry.to, c.element.attrs.from, ctx.connection.jid))
          return next()
        c.handled = true
        settle(id as string, entry)
        if (type === 'result') entry.resolve(c.element as Iq)
        else entry.reject(stanzaErrorOf(c.element))
      },
      { priority: PRIORITY },
    )

    return {
      get pending() {
        return pending.size
      },
      request(request: Element, requestOptions: RequestOptions = {}): Promise<Iq> {
        const type = request.attrs.type
        if (request.name !== 'iq' || (type !== 'get' && type !== 'set')) {
          return Promise.reject(
            new TypeError('request() takes an <iq type="get"/> or <iq type="set"/>'),
          )
        }
        const { signal } = requestOptions
        if (signal?.aborted) return Promise.reject(new AbortError('request aborted', signal.reason))
        let id = request.attrs.id as string | undefined
        if (!id || pending.has(id)) {
          id = `${prefix}${(counter++).toString(36)}`
          request.attrs.id = id
        }
        const key = id
        const timeout = requestOptions.timeout ?? options.timeout
        return new Promise<Iq>((resolve, reject) => {
          const entry: Pending = {
            to: request.attrs.to as string | undefined,
            resolve,
            reject,
            signal,
            onAbort: undefined,
            timer: setTimeout(() => {
              settle(key, entry)
              reject(new TimeoutError(`no answer to iq ${key} within ${timeout} ms`))
            }, timeout),
          }
          if (signal) {
            entry.onAbort = () => {
              settle(key, entry)
              reject(new AbortError('request aborted', signal.reason))
            }
            signal.addEventListener('abort', entry.onAbort, { once: true })
          }
          pending.set(key, entry)
          ctx.connection.send(request).catch((error: unknown) => {
            if (pending.get(key) !== entry) return
            settle(key, entry)
            reject(error)
          })
        })
      },
    }
  },
})

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
