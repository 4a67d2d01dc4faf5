import type { Element } from '@core/xml'
import { PluginError, type XMPPError } from '@core/errors'
import type { Connection } from './connection.js'
import type { Negotiator, StreamFeature } from './features.js'
import type { Hooks } from './hooks.js'
import type { InboundContext, Middleware, OutboundContext } from './middleware.js'

/** A plugin: a plain object whose setup() returns its API. Build one with definePlugin(). */
export interface Plugin<N extends string = string, A = unknown, O = unknown> {
  readonly name: N
  /** Plugins that must be registered before this one. */
  readonly dependencies: readonly AnyPlugin[]
  /** The options setup() will receive (the defaults, or what with() set). */
  readonly options: O
  setup(ctx: PluginContext, options: O): A | Promise<A>
  /** The same plugin with some options changed. */
  with(options: Partial<O>): Plugin<N, A, O>
}

// biome-ignore lint/suspicious/noExplicitAny: the widest plugin type, used only as a bound
export type AnyPlugin = Plugin<string, any, any>

/** The API a plugin's setup() returns. */
export type ApiOf<P> = P extends Plugin<string, infer A, infer _O> ? Awaited<A> : never

/** Maps a plugin list to `{ [name]: api }`: `conn.plugins.x` exists only if x was passed. */
export type ApisOf<T extends readonly AnyPlugin[]> = {
  [P in T[number] as P['name']]: ApiOf<P>
}

export interface PluginDefinition<N extends string, A, O> {
  name: N
  dependencies?: readonly AnyPlugin[]
  /** Default options. */
  options?: O
  setup(ctx: PluginContext, options: O): A | Promise<A>
}

/** Declares a plugin; each dependency must be registered first (else `missing-dependency`). */
export function definePlugin<N extends string, A, O = undefined>(
  definition: PluginDefinition<N, A, O>,
): Plugin<N, A, O> {
  const dependencies = Object.freeze([...(definition.dependencies ?? [])])
  return Object.freeze(new DefinedPlugin(definition, definition.options as O, dependencies))
}

/**
 * A global key whose value belongs to this copy of @core/connection: a plugin marked by
 * another copy means the app loaded it twice (README, "One copy").
 */
const CORE_MARK: unique symbol = Symbol.for('@core/connection:plugin-core')
const THIS_CORE: { readonly module: string } = Object.freeze({ module: import.meta.url })

/** Throws `foreign-core` for a plugin made by another copy's definePlugin(). @internal */
export function assertSameCore(plugin: AnyPlugin): void {
  const mark = (plugin as { [CORE_MARK]?: { module?: unknown } })[CORE_MARK]
  if (mark === undefined || mark === THIS_CORE) return
  const other = typeof mark?.module === 'string' ? mark.module : 'an unknown location'
  const here = THIS_CORE.module
  throw new PluginError(
    'foreign-core',
    plugin.name,
    `plugin "${plugin.name}" was made by another copy of @core/connection than this connection's (${other === here ? `both are ${here}, loaded twice` : `the plugin's: ${other}; the connection's: ${here}`}): an app must load @core/connection once. The plugin's package should list @core/connection in peerDependencies, not dependencies; \`npm ls @core/connection\` shows the copies.`,
  )
}

/** A class, not a literal with a `with` closure: with() results live as long as connections. */
class DefinedPlugin<N extends string, A, O> implements Plugin<N, A, O> {
  readonly #origin: PluginDefinition<N, A, O>
  readonly options: O
  readonly dependencies: readonly AnyPlugin[]

  constructor(origin: PluginDefinition<N, A, O>, options: O, dependencies: readonly AnyPlugin[]) {
    this.#origin = origin
    this.options = options
    this.dependencies = dependencies
  }

  /** Identity for dependency checks: with() variants share their definition. */
  static originOf(plugin: AnyPlugin): object {
    return #origin in plugin ? (plugin as DefinedPlugin<string, unknown, unknown>).#origin : plugin
  }

  get name(): N {
    return this.#origin.name
  }

  get setup(): PluginDefinition<N, A, O>['setup'] {
    return this.#origin.setup
  }

  /** On the prototype: nothing per variant. */
  get [CORE_MARK](): { readonly module: string } {
    return THIS_CORE
  }

  with(patch: Partial<O>): Plugin<N, A, O> {
    const options = Object.assign({}, this.options, patch)
    return Object.freeze(new DefinedPlugin(this.#origin, options, this.dependencies))
  }
}

/** @internal */
export const originOf: (plugin: AnyPlugin) => object = DefinedPlugin.originOf

/** Order of middleware: lower runs first (outermost). Ties keep registration order. */
export interface MiddlewareOptions {
  priority?: number
}

/** What a plugin's setup() gets: the core's extension points, scoped to the plugin. */
export interface PluginContext {
  readonly connection: Connection
  readonly hooks: Hooks
  /** Aborted at dispose, or with `setup-failed` when this plugin's setup fails. */
  readonly signal: AbortSignal
  /** The API of a dependency (it must be listed in `dependencies`). */
  get<P extends AnyPlugin>(plugin: P): ApiOf<P>
  /** Middleware for every element read. */
  inbound(fn: Middleware<InboundContext>, options?: MiddlewareOptions): void
  /** Middleware for every element sent. */
  outbound(fn: Middleware<OutboundContext>, options?: MiddlewareOptions): void
  feature(feature: StreamFeature): void
  /** Replaces the negotiation strategy; a second plugin fails with `duplicate-negotiator`. */
  negotiation(negotiator: Negotiator): void
  /** Called once an inbound element's handling completed, whoever consumed it. */
  onHandled(fn: (ctx: InboundContext) => void): void
  /** Raw data both ways: chunks as read, each element's XML as written. Keep it cheap. */
  onRaw(fn: (direction: 'in' | 'out', data: string | Uint8Array) => void): void
  /** A timer that is cleared when the connection is disposed. */
  setTimeout(fn: () => void, ms: number): ReturnType<typeof setTimeout>
  clearTimeout(timer: ReturnType<typeof setTimeout> | undefined): void
  /** True once no inbound element is handled or waiting; false after `timeout` ms. */
  inboundSettled(timeout: number): Promise<boolean>
  /**
   * Ends the current stream with `error` (a StreamError of ours goes to the peer, with
   * `appCondition` per RFC 6120 §4.9.4); reason `stream-error`. No-op without a stream.
   */
  fail(error: XMPPError, appCondition?: Element): void
  /** Runs at dispose, plugins in reverse order. */
  onDispose(fn: () => void | Promise<void>): void
}
