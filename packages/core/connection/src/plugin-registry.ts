import type { Element } from '@core/xml'
import { ConnectionError, PluginError, type XMPPError } from '@core/errors'
import type { Connection } from './connection.js'
import { featureNegotiator } from './feature-negotiator.js'
import type { Negotiator, StreamFeature } from './features.js'
import type { Hooks } from './hooks.js'
import type { InboundContext, Middleware, OutboundContext } from './middleware.js'
import { isPromise } from './inbound-queue.js'
import {
  type AnyPlugin,
  type ApiOf,
  type MiddlewareOptions,
  foreignCoreOf,
  originOf,
  type PluginContext,
  thisCoreModule,
} from './plugin.js'

interface Layer<C> {
  fn: Middleware<C>
  plugin: string
  priority: number
}

type Disposer = () => void | Promise<void>

/** What the registry needs from its connection besides the connection itself. */
export interface RegistryHost {
  setupTimeout: number
  report(error: unknown): void
  inboundSettled(timeout: number): Promise<boolean>
  fail(error: XMPPError, appCondition?: Element): void
}

/**
 * The plugins of one connection: registration with dependency checks, setup (sync or
 * async, undone when it fails), what plugins register through their context, and teardown
 * in reverse order. What a plugin may need later (an async setup, a signal, disposers) is
 * kept by registration index, in lists made on first need: most plugins need none of it.
 */
export class PluginRegistry {
  inboundLayers: Layer<InboundContext>[] = []
  outboundLayers: Layer<OutboundContext>[] = []
  features: StreamFeature[] = []
  readonly handled: ((ctx: InboundContext) => void)[] = []
  readonly rawTaps: ((direction: 'in' | 'out', data: string | Uint8Array) => void)[] = []
  /** Set by at most one plugin (ctx.negotiation()); stream features otherwise. */
  negotiator: Negotiator = featureNegotiator
  negotiatorOwner: string | undefined
  /** Plugin timers (ctx.setTimeout). */
  timers: Set<ReturnType<typeof setTimeout>> | undefined
  /** No more use(): set by the first connect() (freeze()). */
  frozen = false
  /** Pipelines composed: no more extensions through a context. */
  composed = false
  disposed = false
  readonly connection: Connection
  #plugins: AnyPlugin[] = []
  /** A setup still running (async, or waiting for its dependencies), by index. */
  #running: (Promise<void> | undefined)[] | undefined
  /** Every async setup, for ready() and settled(). */
  #setups: Promise<void>[] | undefined
  #controllers: (AbortController | undefined)[] | undefined
  #disposers: (Disposer[] | undefined)[] | undefined
  readonly host: RegistryHost
  #teardown: Promise<void> | undefined

  constructor(connection: Connection, host: RegistryHost) {
    this.connection = connection
    this.host = host
  }

  /** The plugin list is final: trimmed to its size. */
  freeze(): void {
    if (this.frozen) return
    this.frozen = true
    this.#plugins = this.#plugins.slice()
  }

  /** Whether some plugin's setup is async (connect() then waits for settled()). */
  get hasAsyncSetups(): boolean {
    return this.#setups !== undefined
  }

  /** Resolves once every plugin's (possibly async) setup finished. */
  async ready(): Promise<void> {
    await Promise.all(this.#setups ?? [])
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
   * Registers a plugin. Its dependencies must already be registered. A plugin whose setup
   * throws leaves nothing behind; one whose dependency's setup is async is set up once that
   * finished (ctx.get(dependency) is typed as present).
   */
  use(plugin: AnyPlugin): void {
    const { name } = plugin
    if (this.disposed || this.frozen) {
      throw new PluginError(
        'registry-frozen',
        name,
        this.disposed
          ? `cannot register plugin "${name}": the connection was disposed`
          : `cannot register plugin "${name}": the plugin registry froze when connect() was first called. Pass it in createConnection({ plugins: [...] }) or call use() before connect().`,
      )
    }
    const otherCore = foreignCoreOf(plugin)
    if (otherCore !== undefined) {
      throw new PluginError(
        'foreign-core',
        name,
        `plugin "${name}" was made by another copy of @core/connection than this connection's (${otherCore === thisCoreModule ? `both are ${thisCoreModule}, loaded twice` : `the plugin's: ${otherCore}; the connection's: ${thisCoreModule}`}): an app must load @core/connection once. The plugin's package should list @core/connection in peerDependencies, not dependencies; \`npm ls @core/connection\` shows the copies.`,
      )
    }
    if (this.#plugins.some((p) => p.name === name)) {
      throw new PluginError('duplicate-plugin', name, `plugin "${name}" is already registered`)
    }
    const waits: Promise<void>[] = []
    for (const dependency of plugin.dependencies) {
      const index = this.#indexOf(dependency)
      if (index < 0) {
        const namesake = this.#plugins.some((p) => p.name === dependency.name)
        throw new PluginError(
          'missing-dependency',
          name,
          namesake
            ? `plugin "${name}" depends on plugin "${dependency.name}", but the plugin registered under that name is a different one (dependencies are plugin objects, not names)`
            : `plugin "${name}" depends on plugin "${dependency.name}", which is not registered: register "${dependency.name}" before "${name}"`,
        )
      }
      const running = this.#running?.[index]
      if (running) waits.push(running)
    }
    const index = this.#plugins.push(plugin) - 1
    const ctx = new Context(this, index)
    if (waits.length > 0) {
      this.#track(
        ctx,
        Promise.all(waits).then(() => this.#runSetup(ctx, plugin)),
      )
      return
    }
    let result: unknown
    try {
      result = this.#runSetup(ctx, plugin)
    } catch (error) {
      ctx.undo()
      this.#plugins.pop()
      throw error
    }
    if (isPromise(result)) this.#track(ctx, result)
    else this.#setupDone(ctx, result)
  }

  #indexOf(plugin: AnyPlugin): number {
    const origin = originOf(plugin)
    return this.#plugins.findIndex((p) => originOf(p) === origin)
  }

  pluginAt(index: number): AnyPlugin {
    return this.#plugins[index] as AnyPlugin
  }

  /** The API of a registered plugin (or of a with() variant of it). */
  apiOf(plugin: AnyPlugin): unknown {
    const registered = this.#plugins[this.#indexOf(plugin)]
    return registered && (this.connection.plugins as Record<string, unknown>)[registered.name]
  }

  /** Runs setup; what it registers (hooks included, while it runs synchronously) is undoable. */
  #runSetup(ctx: Context, plugin: AnyPlugin): unknown {
    const restore = this.connection.hooks.record((off) => ctx.onUndo(off))
    try {
      return plugin.setup(ctx, plugin.options)
    } catch (error) {
      throw setupFailed(plugin.name, error)
    } finally {
      restore()
    }
  }

  #setupDone(ctx: Context, api: unknown): void {
    ctx.setupDone()
    if (this.#running) this.#running[ctx.index] = undefined
    ;(this.connection.plugins as Record<string, unknown>)[this.pluginAt(ctx.index).name] = api
  }

  #track(ctx: Context, result: Promise<unknown>): void {
    const setup = this.#awaitSetup(ctx, result)
    this.#running ??= []
    this.#running[ctx.index] = setup
    // connect() (through settled()) reports a failure and tears the registry down; this only
    // keeps the rejection from also being unhandled while nobody awaits it yet.
    setup.then(undefined, reportedThroughReady)
    this.#setups ??= []
    this.#setups.push(setup)
  }

  async #awaitSetup(ctx: Context, result: Promise<unknown>): Promise<void> {
    const { name } = this.pluginAt(ctx.index)
    const ms = this.host.setupTimeout
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new PluginError(
              'setup-timeout',
              name,
              `setup of plugin "${name}" did not finish within ${ms} ms`,
            ),
          ),
        ms,
      )
    })
    try {
      this.#setupDone(ctx, await Promise.race([result, timeout]))
    } catch (error) {
      ctx.undo()
      throw error instanceof PluginError ? error : setupFailed(name, error)
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Every async setup finished, or one failed: then the whole registry is torn down (in
   * reverse order) and the connection is disposed, so that no plugin is left running.
   */
  async settled(): Promise<void> {
    const results = await Promise.allSettled(this.#setups ?? [])
    const failed = results.find((r) => r.status === 'rejected')
    if (!failed) return
    await this.teardown()
    throw failed.reason
  }

  /** Aborted at teardown; created on a plugin's first use of ctx.signal. */
  signalOf(index: number): AbortSignal {
    this.#controllers ??= []
    let controller = this.#controllers[index]
    if (!controller) {
      controller = new AbortController()
      this.#controllers[index] = controller
      if (this.disposed) controller.abort(disposedError())
    }
    return controller.signal
  }

  addDisposer(index: number, fn: Disposer): Disposer[] {
    // Sized to the plugins (a list grown by writes keeps spare slots: idle connections add up).
    this.#disposers ??= new Array(this.#plugins.length)
    const list = this.#disposers[index]
    if (list) list.push(fn)
    else this.#disposers[index] = [fn]
    return this.#disposers[index] as Disposer[]
  }

  /** Tears every plugin down, in reverse registration order; runs once. */
  teardown(): Promise<void> {
    this.#teardown ??= this.#runTeardown()
    return this.#teardown
  }

  async #runTeardown(): Promise<void> {
    this.disposed = true
    this.frozen = true
    for (const timer of this.timers ?? []) clearTimeout(timer)
    this.timers?.clear()
    for (let i = this.#plugins.length - 1; i >= 0; i--) {
      this.#controllers?.[i]?.abort(disposedError())
      const disposers = this.#disposers?.[i] ?? []
      for (let j = disposers.length - 1; j >= 0; j--) {
        try {
          await (disposers[j] as Disposer)()
        } catch (error) {
          const { name } = this.pluginAt(i)
          this.host.report(
            new PluginError(
              'teardown-failed',
              name,
              `teardown of plugin "${name}" failed: ${describe(error)}`,
              error,
            ),
          )
        }
      }
    }
    this.connection.hooks.clear()
  }
}

/**
 * What a plugin's setup() gets: its methods live on the prototype, and the object holds
 * only its registry and the plugin's index (a plugin keeps it as long as the connection).
 */
class Context implements PluginContext {
  readonly #registry: PluginRegistry
  readonly index: number
  /** While setup runs: how to take back what the plugin registered, should it fail. */
  #undo: (() => void)[] | undefined = []

  constructor(registry: PluginRegistry, index: number) {
    this.#registry = registry
    this.index = index
  }

  get connection(): Connection {
    return this.#registry.connection
  }

  get hooks(): Hooks {
    return this.#registry.connection.hooks
  }

  get signal(): AbortSignal {
    return this.#registry.signalOf(this.index)
  }

  get #name(): string {
    return this.#registry.pluginAt(this.index).name
  }

  onUndo(fn: () => void): void {
    this.#undo?.push(fn)
  }

  /** Removes what a failed setup registered, most recent first. */
  undo(): void {
    const undo = this.#undo ?? []
    this.#undo = undefined
    for (let i = undo.length - 1; i >= 0; i--) (undo[i] as () => void)()
  }

  setupDone(): void {
    this.#undo = undefined
  }

  get<P extends AnyPlugin>(plugin: P): ApiOf<P> {
    const origin = originOf(plugin)
    const self = this.#registry.pluginAt(this.index)
    if (!self.dependencies.some((d) => originOf(d) === origin)) {
      throw new PluginError(
        'missing-dependency',
        self.name,
        `plugin "${self.name}" asked for plugin "${plugin.name}" without declaring it in dependencies`,
      )
    }
    return this.#registry.apiOf(plugin) as ApiOf<P>
  }

  inbound(fn: Middleware<InboundContext>, options?: MiddlewareOptions): void {
    this.#addLayer(this.#registry.inboundLayers, fn, options)
  }

  outbound(fn: Middleware<OutboundContext>, options?: MiddlewareOptions): void {
    this.#addLayer(this.#registry.outboundLayers, fn, options)
  }

  #addLayer<C>(list: Layer<C>[], fn: Middleware<C>, options?: MiddlewareOptions): void {
    const plugin = this.#name
    this.#registry.assertOpen(plugin)
    const priority = options?.priority ?? 0
    this.#add(list, { fn, plugin, priority }, priority)
  }

  feature(feature: StreamFeature): void {
    const registry = this.#registry
    registry.assertOpen(this.#name)
    if (registry.features.some((f) => f.name === feature.name)) {
      throw new PluginError(
        'duplicate-feature',
        this.#name,
        `stream feature "${feature.name}" is already registered`,
      )
    }
    this.#add(registry.features, feature, feature.priority)
  }

  negotiation(negotiator: Negotiator): void {
    const name = this.#name
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
    this.onUndo(() => {
      registry.negotiator = featureNegotiator
      registry.negotiatorOwner = undefined
    })
  }

  onHandled(fn: (ctx: InboundContext) => void): void {
    this.#add(this.#registry.handled, fn)
  }

  onRaw(fn: (direction: 'in' | 'out', data: string | Uint8Array) => void): void {
    this.#add(this.#registry.rawTaps, fn)
  }

  /** Adds `item`, by `priority` when given (ties keep registration order), undoably. */
  #add<T>(list: T[], item: T, priority?: number): void {
    let i = list.length
    if (priority !== undefined) {
      while (i > 0 && (list[i - 1] as { priority: number }).priority > priority) i--
    }
    list.splice(i, 0, item)
    this.#undoAdd(list, item)
  }

  #undoAdd<T>(list: T[], item: T): void {
    this.onUndo(() => {
      const i = list.indexOf(item)
      if (i >= 0) list.splice(i, 1)
    })
  }

  setTimeout(fn: () => void, ms: number): ReturnType<typeof setTimeout> {
    this.#registry.timers ??= new Set()
    const timers = this.#registry.timers
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
    return this.#registry.host.inboundSettled(timeout)
  }

  fail(error: XMPPError, appCondition?: Element): void {
    this.#registry.host.fail(error, appCondition)
  }

  onDispose(fn: Disposer): void {
    // A failed setup is undone: its disposers do not run later.
    this.#undoAdd(this.#registry.addDisposer(this.index, fn), fn)
  }
}

function setupFailed(name: string, error: unknown): PluginError {
  return new PluginError(
    'setup-failed',
    name,
    `setup of plugin "${name}" failed: ${describe(error)}`,
    error,
  )
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

function disposedError(): ConnectionError {
  return new ConnectionError('disposed', 'the connection was disposed')
}

function reportedThroughReady(): void {}
