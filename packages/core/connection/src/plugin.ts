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

/**
 * Declares a plugin. Dependencies are plugin objects; the registry checks that each was
 * registered before this one and fails with PluginError `missing-dependency` otherwise.
 */
export function definePlugin<N extends string, A, O = undefined>(
  definition: PluginDefinition<N, A, O>,
): Plugin<N, A, O> {
  const dependencies = Object.freeze([...(definition.dependencies ?? [])])
  return Object.freeze(new DefinedPlugin(definition, definition.options as O, dependencies))
}

/**
 * Marks the plugins made by definePlugin() with the copy of @core/connection that made them.
 * The key is global (Symbol.for), the value belongs to this copy: a registry that meets a
 * plugin marked by another copy knows the app loaded @core/connection twice, which breaks
 * dependency matching and `instanceof` (see the README, "One copy").
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

/**
 * A class rather than an object literal with a `with` closure: a preset calls with() on
 * several plugins per connection, and each result lives as long as the connection.
 */
class DefinedPlugin<N extends string, A, O> implements Plugin<N, A, O> {
  /** Private: shared by all with() variants, see originOf(). */
  readonly #origin: PluginDefinition<N, A, O>
  readonly options: O
  readonly dependencies: readonly AnyPlugin[]

  constructor(origin: PluginDefinition<N, A, O>, options: O, dependencies: readonly AnyPlugin[]) {
    this.#origin = origin
    this.options = options
    this.dependencies = dependencies
  }

  /**
   * What identifies a plugin for dependency checks: a plugin made by definePlugin() and all
   * its with() variants share their definition; any other plugin object is its own.
   */
  static originOf(plugin: AnyPlugin): object {
    return #origin in plugin ? (plugin as DefinedPlugin<string, unknown, unknown>).#origin : plugin
  }

  get name(): N {
    return this.#origin.name
  }

  get setup(): PluginDefinition<N, A, O>['setup'] {
    return this.#origin.setup
  }

  /** On the prototype, so it costs nothing per variant. */
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

/** What a plugin's setup() gets: the extension points of the core, scoped to the plugin. */
export interface PluginContext {
  /** The connection (untyped plugins view). */
  readonly connection: Connection
  readonly hooks: Hooks
  /**
   * Aborted when the connection is disposed, or with `setup-failed` when this plugin's setup
   * fails; use it for the plugin's own timers and I/O.
   */
  readonly signal: AbortSignal
  /** The API of a dependency (it must be listed in `dependencies`). */
  get<P extends AnyPlugin>(plugin: P): ApiOf<P>
  /** Adds an inbound middleware: every element read from the stream passes through it. */
  inbound(fn: Middleware<InboundContext>, options?: MiddlewareOptions): void
  /** Adds an outbound middleware: every element sent passes through it. */
  outbound(fn: Middleware<OutboundContext>, options?: MiddlewareOptions): void
  /** Registers a stream feature for negotiation. */
  feature(feature: StreamFeature): void
  /**
   * Replaces the negotiation strategy (default: the stream features, in priority order),
   * with the stream namespace it needs. One plugin per connection may do so (a second one
   * fails with `duplicate-negotiator`).
   */
  negotiation(negotiator: Negotiator): void
  /**
   * Called once the inbound element's handling is complete (every middleware settled),
   * whichever middleware consumed it. Stream management counts stanzas here.
   */
  onHandled(fn: (ctx: InboundContext) => void): void
  /**
   * Sees raw data in both directions: chunks as read (bytes or text, before parsing) and
   * each element's XML as written. For logging; keep it cheap when switched off.
   */
  onRaw(fn: (direction: 'in' | 'out', data: string | Uint8Array) => void): void
  /** A timer that is cleared when the connection is disposed. */
  setTimeout(fn: () => void, ms: number): ReturnType<typeof setTimeout>
  /** Clears a timer from setTimeout() (and forgets it). */
  clearTimeout(timer: ReturnType<typeof setTimeout> | undefined): void
  /**
   * Resolves true once no inbound element is being handled or waiting to be, false when
   * `timeout` ms passed first. Stream management waits on it before it reports a count.
   */
  inboundSettled(timeout: number): Promise<boolean>
  /**
   * Ends the current stream with `error`: a StreamError of ours is sent to the peer (with
   * `appCondition`, an application-specific condition element, RFC 6120 §4.9.4), then the
   * stream closes and the disconnection is reported with reason `stream-error`. For a plugin
   * that detects a protocol violation (stream management: an ack for more than was sent).
   * Does nothing when there is no stream.
   */
  fail(error: XMPPError, appCondition?: Element): void
  /** Runs at dispose, in reverse registration order of plugins. */
  onDispose(fn: () => void | Promise<void>): void
}
