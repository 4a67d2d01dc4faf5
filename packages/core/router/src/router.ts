import { Element } from '@core/xml'
import type { Connection } from '@core/connection'
import { StanzaError } from '@core/errors'
import { JID } from '@core/jid'
import type { InboundContext, Next } from '@core/connection'
import { NS_STANZA_ERRORS } from '@core/xml'
import { definePlugin, type PluginContext } from '@core/connection'
import type { Iq, Message, MessageType, Presence, PresenceType } from '@core/connection'

/** Which stanzas a handler wants. Every field given must match. */
export interface RouteFilter<T extends string> {
  /** The `type` attribute (one or several). `normal` also matches a message with no type. */
  type?: T | readonly T[]
  /** Sender: a bare JID matches any of its resources; a full JID matches exactly. */
  from?: string | JID
  /** Namespace of a child element (the payload), e.g. `urn:xmpp:receipts`. */
  xmlns?: string
  /** Local name of that child, e.g. `body`. */
  child?: string
}

/** Handed to every route handler along with the stanza. */
export interface RouteContext {
  readonly connection: Connection
  /** The sender (parsed on first access). */
  readonly from: JID | undefined
  readonly to: JID | undefined
  /** The first child matching the route's `xmlns`/`child`, if the route named one. */
  readonly payload: Element | undefined
}

export type Handler<S> = (stanza: S, ctx: RouteContext) => void | Promise<void>
/**
 * Answers an iq get/set: return the payload of the result (or nothing for an empty
 * result); throw a StanzaError to answer with that error.
 */
export type IqHandler = (
  request: Iq,
  ctx: RouteContext & { readonly payload: Element },
) => Element | undefined | undefined | Promise<Element | undefined | undefined>

export interface RouterApi {
  /** Handles messages: `router.message({ type: 'chat', child: 'body' }, (msg) => ...)`. */
  message(filter: RouteFilter<MessageType>, handler: Handler<Message>): () => void
  message(handler: Handler<Message>): () => void
  presence(filter: RouteFilter<PresenceType | 'available'>, handler: Handler<Presence>): () => void
  presence(handler: Handler<Presence>): () => void
  /** Answers iq requests whose payload is `<child xmlns=xmlns/>` (any name when child is omitted). */
  iq(type: 'get' | 'set', xmlns: string, handler: IqHandler, child?: string): () => void
  /** Handles a nonza (a top-level element that is not a stanza) by name and namespace. */
  nonza(name: string, xmlns: string | undefined, handler: Handler<Element>): () => void
}

interface Route {
  types: ReadonlySet<string> | undefined
  from: JID | undefined
  xmlns: string | undefined
  child: string | undefined
  handler: (stanza: Element, ctx: RouteContext) => unknown
}

/** Runs after other inbound middleware (it is where stanzas end up). */
const PRIORITY = 100

/**
 * Routes inbound stanzas to handlers registered by stanza name, type, payload namespace and
 * sender. Every matching message/presence handler runs, in registration order; the first
 * matching iq handler answers the request. Stanzas no route matched continue to the
 * `stanza` hook; iq requests nobody answers get service-unavailable from the core.
 */
export const router = definePlugin({
  name: 'router',
  setup(ctx): RouterApi {
    return new Router(ctx)
  },
})

/**
 * The router's API and its routes, one per connection. A class rather than an object
 * literal of closures: the methods live on the prototype and the routes in fields (idle
 * connections add up). Call the methods on the API (`conn.plugins.router.message(...)`).
 *
 * Routes are kept by key: the stanza name (`message`, `presence`), `iq <type>`, or
 * `<name> <namespace>` for a nonza. The four stanza keys have a field each rather than a
 * Map entry: most clients register a handful of handlers (often only XEP-0199's iq get),
 * and a Map costs 184 bytes even with one entry. Other keys (nonzas) go to a Map created
 * for the first of them. A list is replaced, never changed in place, so that a dispatch in
 * progress is not disturbed by a handler adding or removing routes.
 */
class Router implements RouterApi {
  readonly #connection: Connection
  #message: readonly Route[] | undefined = undefined
  #presence: readonly Route[] | undefined = undefined
  #iqGet: readonly Route[] | undefined = undefined
  #iqSet: readonly Route[] | undefined = undefined
  #others: Map<string, readonly Route[]> | undefined = undefined

  constructor(ctx: PluginContext) {
    this.#connection = ctx.connection
    ctx.inbound((c, next) => this.#onInbound(c, next), { priority: PRIORITY })
  }

  message(a: unknown, b?: unknown): () => void {
    return this.#route('message', a, b)
  }

  presence(a: unknown, b?: unknown): () => void {
    return this.#route('presence', a, b)
  }

  iq(type: 'get' | 'set', xmlns: string, handler: IqHandler, child?: string): () => void {
    return this.#add(
      `iq ${type}`,
      compile({ xmlns, ...(child ? { child } : {}) }, handler as Route['handler']),
    )
  }

  nonza(name: string, xmlns: string | undefined, handler: Handler<Element>): () => void {
    return this.#add(`${name} ${xmlns ?? ''}`, compile({}, handler as Route['handler']))
  }

  #onInbound(c: InboundContext, next: Next): void | Promise<void> {
    let list: readonly Route[] | undefined
    if (c.kind === 'nonza') {
      list = this.#others?.get(`${c.name} ${c.element.getNS() ?? ''}`)
    } else if (c.name === 'iq') {
      const type = c.type
      list =
        type === 'get'
          ? this.#iqGet
          : type === 'set'
            ? this.#iqSet
            : this.#others?.get(`iq ${type}`)
    } else {
      list = this.#get(c.name)
    }
    if (!list) return next()
    if (c.name === 'iq') return answer(this.#connection, c, list, next)
    return dispatch(this.#connection, c, list, next)
  }

  #route(name: string, a: unknown, b: unknown): () => void {
    const filter = (typeof a === 'function' ? {} : a) as RouteFilter<string>
    const handler = (typeof a === 'function' ? a : b) as Route['handler']
    return this.#add(name, compile(filter, handler))
  }

  #add(key: string, route: Route): () => void {
    const list = this.#get(key)
    // concat() and a literal make arrays of the exact length (a spread or push() into a new
    // array reserves room for 17 items).
    this.#set(key, list ? list.concat([route]) : [route])
    return () => {
      const current = this.#get(key)
      const i = current ? current.indexOf(route) : -1
      if (!current || i < 0) return
      if (current.length === 1) this.#set(key, undefined)
      else this.#set(key, current.slice(0, i).concat(current.slice(i + 1)))
    }
  }

  #get(key: string): readonly Route[] | undefined {
    switch (key) {
      case 'message':
        return this.#message
      case 'presence':
        return this.#presence
      case 'iq get':
        return this.#iqGet
      case 'iq set':
        return this.#iqSet
      default:
        return this.#others?.get(key)
    }
  }

  /** Replaces the list of `key`; undefined removes it. */
  #set(key: string, list: readonly Route[] | undefined): void {
    switch (key) {
      case 'message':
        this.#message = list
        return
      case 'presence':
        this.#presence = list
        return
      case 'iq get':
        this.#iqGet = list
        return
      case 'iq set':
        this.#iqSet = list
        return
      default:
        if (list) {
          this.#others ??= new Map()
          this.#others.set(key, list)
        } else this.#others?.delete(key)
    }
  }
}

function compile(filter: RouteFilter<string>, handler: Route['handler']): Route {
  const types =
    filter.type === undefined
      ? undefined
      : new Set<string>(typeof filter.type === 'string' ? [filter.type] : filter.type)
  const from =
    filter.from === undefined
      ? undefined
      : typeof filter.from === 'string'
        ? JID.parse(filter.from)
        : filter.from
  return { types, from, xmlns: filter.xmlns, child: filter.child, handler }
}

/** The payload a route asks for, or null when the stanza does not match the route. */
function match(route: Route, c: InboundContext): Element | undefined | null {
  if (route.types) {
    const type = c.type || defaultType(c.name)
    if (!route.types.has(type)) return null
  }
  if (route.from) {
    const sender = c.from
    if (!sender) return null
    if (route.from.isBare() ? !route.from.equals(sender.bare()) : !route.from.equals(sender))
      return null
  }
  if (route.xmlns === undefined && route.child === undefined) return undefined
  for (const child of c.element.children) {
    if (typeof child === 'string') continue
    if (route.child !== undefined && child.getName() !== route.child) continue
    if (route.xmlns !== undefined && child.getNS() !== route.xmlns) continue
    return child
  }
  return null
}

function defaultType(name: string): string {
  // RFC 6121 §5.2.2: no type means normal; RFC 6121 §4.7.1: no type means available.
  return name === 'message' ? 'normal' : name === 'presence' ? 'available' : ''
}

/** One per routed stanza: a small class, so the accessors live on the prototype. */
class Routed implements RouteContext {
  readonly connection: Connection
  readonly payload: Element | undefined
  readonly #c: InboundContext

  constructor(connection: Connection, c: InboundContext, payload: Element | undefined) {
    this.connection = connection
    this.#c = c
    this.payload = payload
  }

  get from(): JID | undefined {
    return this.#c.from
  }

  get to(): JID | undefined {
    return this.#c.to
  }
}

function routeContext(
  connection: Connection,
  c: InboundContext,
  payload: Element | undefined,
): RouteContext {
  return new Routed(connection, c, payload)
}

/**
 * Runs every matching handler in order. Synchronous handlers keep the whole dispatch
 * synchronous (no promise per stanza); the first handler that returns a promise switches
 * to awaiting the rest.
 */
function dispatch(
  connection: Connection,
  c: InboundContext,
  list: readonly Route[],
  next: () => void | Promise<void>,
): void | Promise<void> {
  let matched = false
  for (let i = 0; i < list.length; i++) {
    const route = list[i] as Route
    const payload = match(route, c)
    if (payload === null) continue
    matched = true
    c.handled = true
    const result = route.handler(c.element, routeContext(connection, c, payload))
    if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
      return finishDispatch(connection, c, list, i + 1, result as Promise<void>)
    }
  }
  if (!matched) return next()
}

async function finishDispatch(
  connection: Connection,
  c: InboundContext,
  list: readonly Route[],
  from: number,
  pending: Promise<void>,
): Promise<void> {
  await pending
  for (let i = from; i < list.length; i++) {
    const route = list[i] as Route
    const payload = match(route, c)
    if (payload === null) continue
    await route.handler(c.element, routeContext(connection, c, payload))
  }
}

async function answer(
  connection: Connection,
  c: InboundContext,
  list: readonly Route[],
  next: () => void | Promise<void>,
): Promise<void> {
  for (const route of list) {
    const payload = match(route, c)
    if (!payload) continue
    const { id, from, to } = c.element.attrs
    let reply: Element
    try {
      const result = await route.handler(c.element, routeContext(connection, c, payload))
      reply = new Element('iq', { type: 'result', id, to: from, from: to })
      if (result instanceof Element) reply.cnode(result)
    } catch (error) {
      // Anything but a StanzaError is a bug: the core answers internal-server-error.
      if (!(error instanceof StanzaError)) throw error
      reply = new Element('iq', { type: 'error', id, to: from, from: to })
      const el = reply.c('error', { type: error.type })
      el.c(error.condition ?? 'undefined-condition', { xmlns: NS_STANZA_ERRORS })
      if (error.text) el.c('text', { xmlns: NS_STANZA_ERRORS }).t(error.text)
    }
    c.handled = true
    await connection.send(reply)
    return
  }
  await next()
}
