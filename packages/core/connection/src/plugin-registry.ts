import type { Element } from '@core/xml'
import { ConnectionError, PluginError, type XMPPError } from '@core/errors'
import type { Connection } from './connection.js'
import { featureNegotiator } from './feature-negotiator.js'
import type { Negotiator, StreamFeature } from './features.js'
import type { Hooks } from './hooks.js'
import type { InboundContext, Middleware, OutboundContext } from './middleware.js'
import {
  type AnyPlugin,
  type ApiOf,
  type MiddlewareOptions,
  foreignCoreOf,
  originOf,
  type PluginContext,
  thisCoreModule,
} from './plugin.js'

interface Registered {
  plugin: AnyPlugin
  /** The same for a plugin and its with() variants: what dependencies are matched by. */
  origin: object
  api: unknown
  /** Undoes what the plugin registered, while its setup has not finished. */
  undo: (() => void)[] | undefined
  /** Its async setup (or its wait for its dependencies' setups), while not finished. */
  ready: Promise<void> | undefined
  /** Created on first use of ctx.signal: most plugins never ask, and each costs memory. */
  controller: AbortController | undefined
  disposed: boolean
  /** Created on first ctx.onDispose(). */
  disposers: (() => void | Promise<void>)[] | undefined
}

interface Layer<C> {
  fn: Middleware<C>
  plugin: string
  priority: number
}

/** What the registry needs from its connection besides the connection itself. */
export interface RegistryHost {
  setupTimeout: number
  report(error: unknown): void
  inboundSettled(timeout: number): Promise<boolean>
  fail(error: XMPPError, appCondition?: Element): void
}

/**
 * The plugins of one connection: registration with dependency checks, setup (sync or
 * async, undone when it fails), what plugins register through their context (middleware,
 * features, the negotiation strategy, taps, timers), and teardown in reverse order.
 */
export class PluginRegistry {
  readonly inboundLayers: Layer<InboundContext>[] = []
  readonly outboundLayers: Layer<OutboundContext>[] = []
  readonly features: StreamFeature[] = []
  readonly handled: ((ctx: InboundContext) => void)[] = []
  readonly rawTaps: ((direction: 'in' | 'out', data: string | Uint8Array) => void)[] = []
  /** Set by at most one plugin (ctx.negotiation()); stream features otherwise. */
  negotiator: Negotiator = featureNegotiator
  negotiatorOwner: string | undefined
  /** Plugin timers (ctx.setTimeout), created on first use. */
  timers: Set<ReturnType<typeof setTimeout>> | undefined
  /** No more use(): set by the first connect(). */
  frozen = false
  /** Pipelines composed: no more extensions through a context. */
  composed = false
  disposed = false
  readonly #entries: Registered[] = []
  readonly #setups: Promise<void>[] = []
  readonly #connection: Connection
  readonly #setupTimeout: number
  /** The connection's side (one object with methods: no closures per connection). */
  readonly #host: RegistryHost
  #teardown: Promise<void> | undefined

  constructor(connection: Connection, host: RegistryHost) {
    this.#connection = connection
    this.#setupTimeout = host.setupTimeout
    this.#host = host
  }

  inboundSettled(timeout: number): Promise<boolean> {
    return this.#host.inboundSettled(timeout)
  }

  fail(error: XMPPError, appCondition?: Element): void {
    this.#host.fail(error, appCondition)
  }

  #report(error: unknown): void {
    this.#host.report(error)
  }

  /** Whether some plugin's setup is async (connect() then waits for settled()). */
  get hasAsyncSetups(): boolean {
    return this.#setups.length > 0
  }

  /** Resolves once every plugin's (possibly async) setup finished. */
  async ready(): Promise<void> {
    await Promise.all(this.#setups)
  }

  assertOpen(plugin: string): void {
    if (this.composed) {
      throw new PluginError(
        'registry-frozen',
        plugin,
        `plugin "${plugin}" tried to extend the connection after the registry froze at connect(); do it in setup()`,
      )
    }
  }

  /**
   * Registers a plugin. Its dependencies must already be registered. Fails once the
   * registry froze (at the first connect()). A plugin whose setup throws leaves nothing
   * behind (middleware, features, hooks it added in setup are removed). A plugin whose
   * dependency's setup is async is set up once that finished.
   */
  use(plugin: AnyPlugin): void {
    if (this.disposed) {
      throw new PluginError(
        'registry-frozen',
        plugin.name,
        `cannot register plugin "${plugin.name}": the connection was disposed`,
      )
    }
    if (this.frozen) {
      throw new PluginError(
        'registry-frozen',
        plugin.name,
        `cannot register plugin "${plugin.name}": the plugin registry froze when connect() was first called. Pass it in createConnection({ plugins: [...] }) or call use() before connect().`,
      )
    }
    const otherCore = foreignCoreOf(plugin)
    if (otherCore !== undefined) {
      throw new PluginError(
        'foreign-core',
        plugin.name,
        `plugin "${plugin.name}" was made by another copy of @core/connection than this connection's (${otherCore === thisCoreModule ? `both are ${thisCoreModule}, loaded twice` : `the plugin's: ${otherCore}; the connection's: ${thisCoreModule}`}): an app must load @core/connection once. The plugin's package should list @core/connection in peerDependencies, not dependencies; \`npm ls @core/connection\` shows the copies.`,
      )
    }
    if (this.#entries.some((r) => r.plugin.name === plugin.name)) {
      throw new PluginError(
        'duplicate-plugin',
        plugin.name,
        `plugin "${plugin.name}" is already registered`,
      )
    }
    const waits: Promise<void>[] = []
    for (const dependency of plugin.dependencies) {
      const found = this.entryOf(dependency)
      if (!found) {
        const namesake = this.#entries.some((r) => r.plugin.name === dependency.name)
        throw new PluginError(
          'missing-dependency',
          plugin.name,
          namesake
            ? `plugin "${plugin.name}" depends on plugin "${dependency.name}", but the plugin registered under that name is a different one (dependencies are plugin objects, not names)`
            : `plugin "${plugin.name}" depends on plugin "${dependency.name}", which is not registered: register "${dependency.name}" before "${plugin.name}"`,
        )
      }
      if (found.ready) waits.push(found.ready)
    }
    const entry: Registered = {
      plugin,
      origin: originOf(plugin),
      api: undefined,
      controller: undefined,
      disposed: false,
      disposers: undefined,
      undo: [],
      ready: undefined,
    }
    this.#entries.push(entry)
    if (waits.length > 0) {
      // ctx.get(dependency) is typed as present: run setup once the dependencies are.
      this.#trackSetup(
        entry,
        Promise.all(waits).then(() => this.#runSetup(entry)),
      )
    } else {
      let result: unknown
      try {
        result = this.#runSetup(entry)
      } catch (error) {
        this.#undoSetup(entry)
        this.#entries.pop()
        throw error
      }
      if (isPromise(result)) this.#trackSetup(entry, result)
      else this.#setupDone(entry, result)
    }
  }

  /** The registered entry of a plugin or of a with() variant of it. */
  entryOf(plugin: AnyPlugin): Registered | undefined {
    const origin = originOf(plugin)
    return this.#entries.find((r) => r.origin === origin)
  }

  /**
   * Runs a plugin's setup; what it registers through its context (and the hooks it adds
   * synchronously) is recorded so that a failing setup can be undone.
   */
  #runSetup(entry: Registered): unknown {
    const { plugin } = entry
    const undo = entry.undo as (() => void)[]
    const restore = this.#connection.hooks.record((off) => undo.push(off))
    try {
      return plugin.setup(new Context(this.#connection, this, entry), plugin.options)
    } catch (error) {
      throw new PluginError(
        'setup-failed',
        plugin.name,
        `setup of plugin "${plugin.name}" failed: ${describe(error)}`,
        error,
      )
    } finally {
      restore()
    }
  }

  #setupDone(entry: Registered, api: unknown): void {
    entry.api = api
    entry.undo = undefined
    entry.ready = undefined
    ;(this.#connection.plugins as Record<string, unknown>)[entry.plugin.name] = api
  }

  /** Removes what a failed setup registered, most recent first. */
  #undoSetup(entry: Registered): void {
    const undo = entry.undo ?? []
    entry.undo = undefined
    for (let i = undo.length - 1; i >= 0; i--) (undo[i] as () => void)()
  }

  #trackSetup(entry: Registered, result: Promise<unknown>): void {
    const setup = this.#awaitSetup(entry, result)
    entry.ready = setup
    // connect() (through settled()) reports a failure and tears the registry down; this only
    // keeps the rejection from also being unhandled while nobody awaits it yet.
    setup.then(undefined, reportedThroughReady)
    this.#setups.push(setup)
  }

  async #awaitSetup(entry: Registered, result: Promise<unknown>): Promise<void> {
    const name = entry.plugin.name
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new PluginError(
              'setup-timeout',
              name,
              `setup of plugin "${name}" did not finish within ${this.#setupTimeout} ms`,
            ),
          ),
        this.#setupTimeout,
      )
    })
    try {
      this.#setupDone(entry, await Promise.race([result, timeout]))
    } catch (error) {
      this.#undoSetup(entry)
      if (error instanceof PluginError) throw error
      throw new PluginError(
        'setup-failed',
        name,
        `setup of plugin "${name}" failed: ${describe(error)}`,
        error,
      )
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Every async setup finished, or one failed: then the whole registry is torn down (in
   * reverse order) and the connection is disposed, so that no plugin is left running.
   */
  async settled(): Promise<void> {
    const results = await Promise.allSettled(this.#setups)
    const failed = results.find((r) => r.status === 'rejected')
    if (!failed) return
    await this.teardown()
    throw failed.reason
  }

  /** Tears every plugin down, in reverse registration order; runs once. */
  teardown(): Promise<void> {
    this.#teardown ??= this.#runTeardown()
    return this.#teardown
  }

  async #runTeardown(): Promise<void> {
    this.disposed = true
    this.frozen = true
    if (this.timers) {
      for (const timer of this.timers) clearTimeout(timer)
      this.timers.clear()
    }
    for (let i = this.#entries.length - 1; i >= 0; i--) {
      const entry = this.#entries[i] as Registered
      entry.disposed = true
      entry.controller?.abort(disposedError())
      const disposers = entry.disposers ?? []
      for (let j = disposers.length - 1; j >= 0; j--) {
        try {
          await (disposers[j] as () => void | Promise<void>)()
        } catch (error) {
          this.#report(
            new PluginError(
              'teardown-failed',
              entry.plugin.name,
              `teardown of plugin "${entry.plugin.name}" failed: ${describe(error)}`,
              error,
            ),
          )
        }
      }
    }
    this.#connection.hooks.clear()
  }
}

/**
 * What a plugin's setup() gets. Its methods live on the prototype: a plugin that keeps
 * its context (most do) then keeps one small object per connection, not a closure per
 * method (idle connections add up).
 */
class Context implements PluginContext {
  readonly connection: Connection
  readonly hooks: Hooks
  readonly #registry: PluginRegistry
  readonly #entry: Registered

  constructor(connection: Connection, registry: PluginRegistry, entry: Registered) {
    this.connection = connection
    this.hooks = connection.hooks
    this.#registry = registry
    this.#entry = entry
  }

  get signal(): AbortSignal {
    const entry = this.#entry
    if (!entry.controller) {
      entry.controller = new AbortController()
      if (entry.disposed) entry.controller.abort(disposedError())
    }
    return entry.controller.signal
  }

  get<P extends AnyPlugin>(plugin: P): ApiOf<P> {
    const name = this.#entry.plugin.name
    const origin = originOf(plugin)
    if (!this.#entry.plugin.dependencies.some((d) => originOf(d) === origin)) {
      throw new PluginError(
        'missing-dependency',
        name,
        `plugin "${name}" asked for plugin "${plugin.name}" without declaring it in dependencies`,
      )
    }
    return this.#registry.entryOf(plugin)?.api as ApiOf<P>
  }

  inbound(fn: Middleware<InboundContext>, options?: MiddlewareOptions): void {
    const name = this.#entry.plugin.name
    this.#registry.assertOpen(name)
    const layer = { fn, plugin: name, priority: options?.priority ?? 0 }
    sorted(this.#registry.inboundLayers, layer)
    this.#onUndo(this.#registry.inboundLayers, layer)
  }

  outbound(fn: Middleware<OutboundContext>, options?: MiddlewareOptions): void {
    const name = this.#entry.plugin.name
    this.#registry.assertOpen(name)
    const layer = { fn, plugin: name, priority: options?.priority ?? 0 }
    sorted(this.#registry.outboundLayers, layer)
    this.#onUndo(this.#registry.outboundLayers, layer)
  }

  feature(feature: StreamFeature): void {
    const name = this.#entry.plugin.name
    const registry = this.#registry
    registry.assertOpen(name)
    if (registry.features.some((f) => f.name === feature.name)) {
      throw new PluginError(
        'duplicate-feature',
        name,
        `stream feature "${feature.name}" is already registered`,
      )
    }
    sorted(registry.features, feature)
    this.#onUndo(registry.features, feature)
  }

  negotiation(negotiator: Negotiator): void {
    const name = this.#entry.plugin.name
    const registry = this.#registry
    registry.assertOpen(name)
    if (registry.negotiatorOwner !== undefined) {
      throw new PluginError(
        'duplicate-negotiator',
        name,
        `plugin "${name}" tried to replace the negotiation strategy, which plugin "${registry.negotiatorOwner}" already replaced: a connection has one`,
      )
    }
    registry.negotiator = negotiator
    registry.negotiatorOwner = name
    this.#entry.undo?.push(() => {
      registry.negotiator = featureNegotiator
      registry.negotiatorOwner = undefined
    })
  }

  onHandled(fn: (ctx: InboundContext) => void): void {
    this.#registry.handled.push(fn)
    this.#onUndo(this.#registry.handled, fn)
  }

  onRaw(fn: (direction: 'in' | 'out', data: string | Uint8Array) => void): void {
    this.#registry.rawTaps.push(fn)
    this.#onUndo(this.#registry.rawTaps, fn)
  }

  /** While setup runs: how to take `item` out of `list` again if the setup fails. */
  #onUndo<T>(list: T[], item: T): void {
    this.#entry.undo?.push(() => {
      const i = list.indexOf(item)
      if (i >= 0) list.splice(i, 1)
    })
  }

  setTimeout(fn: () => void, ms: number): ReturnType<typeof setTimeout> {
    const registry = this.#registry
    registry.timers ??= new Set()
    const timers = registry.timers
    const timer = setTimeout(() => {
      timers.delete(timer)
      fn()
    }, ms)
    timers.add(timer)
    return timer
  }

  clearTimeout(timer: ReturnType<typeof setTimeout> | undefined): void {
    if (timer === undefined) return
    clearTimeout(timer)
    this.#registry.timers?.delete(timer)
  }

  inboundSettled(timeout: number): Promise<boolean> {
    return this.#registry.inboundSettled(timeout)
  }

  fail(error: XMPPError, appCondition?: Element): void {
    this.#registry.fail(error, appCondition)
  }

  onDispose(fn: () => void | Promise<void>): void {
    const entry = this.#entry
    if (entry.disposers) entry.disposers.push(fn)
    else entry.disposers = [fn]
    // A failed setup is undone: its disposers do not run later.
    this.#onUndo(entry.disposers, fn)
  }
}

/** Stable insertion by priority: ties keep registration order. */
function sorted<T extends { priority: number }>(list: T[], item: T): void {
  let i = list.length
  while (i > 0 && (list[i - 1] as T).priority > item.priority) i--
  list.splice(i, 0, item)
}

function isPromise<T>(value: unknown): value is Promise<T> {
  return (
    typeof value === 'object' && value !== null && typeof (value as Promise<T>).then === 'function'
  )
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

function disposedError(): ConnectionError {
  return new ConnectionError('disposed', 'the connection was disposed')
}

function reportedThroughReady(): void {}
