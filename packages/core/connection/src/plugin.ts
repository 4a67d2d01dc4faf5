import type { Connection } from './connection.js'
import type { StreamFeature } from './features.js'
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
  return makePlugin(definition, definition.options as O)
}

function makePlugin<N extends string, A, O>(
  definition: PluginDefinition<N, A, O>,
  options: O,
): Plugin<N, A, O> {
  return Object.freeze({
    name: definition.name,
    dependencies: Object.freeze([...(definition.dependencies ?? [])]),
    options,
    setup: definition.setup,
    with(patch: Partial<O>): Plugin<N, A, O> {
      return makePlugin(definition, { ...options, ...patch } as O)
    },
  })
}

/** Order of middleware: lower runs first (outermost). Ties keep registration order. */
export interface MiddlewareOptions {
  priority?: number
}

/** What a plugin's setup() gets: the extension points of the core, scoped to the plugin. */
export interface PluginContext {
  /** The connection (untyped plugins view). */
  readonly connection: Connection
  readonly hooks: Hooks
  /** Aborted when the connection is disposed; use it for the plugin's own timers and I/O. */
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
  /** Runs at dispose, in reverse registration order of plugins. */
  onDispose(fn: () => void | Promise<void>): void
}
