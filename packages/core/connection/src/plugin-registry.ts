import type { Element } from '@core/xml'
import { ConnectionError, PluginError, type XMPPError } from '@core/errors'
import type { Connection } from './connection.js'
import { featureNegotiator } from './feature-negotiator.js'
import type { Negotiator, StreamFeature } from './features.js'
import { type Hooks, recordingHandlers } from './hooks.js'
import type { InboundContext, Middleware, OutboundContext } from './middleware.js'
import { isPromise } from './inbound-queue.js'
import {
  type AnyPlugin,
  type ApiOf,
  assertSameCore,
  type MiddlewareOptions,
  originOf,
  type PluginContext,
} from './plugin.js'

interface Layer<C> {
  fn: Middleware<C>
  plugin: string
  priority: number
}

type Disposer = () => void | Promise<void>
type Timer = ReturnType<typeof setTimeout>

export interface RegistryHost {
  readonly timeouts: { readonly pluginSetup: number }
  report(error: unknown): void
  inboundSettled(timeout: number): Promise<boolean>
  fail(error: XMPPError, appCondition?: Element): void
}

/**
 * One connection's plugins: dependency checks, setup (a failed one is undone), teardown in
 * reverse order. The registry keeps a plugin's context only while it has something to tear
 * down: most keep none after setup (idle connections add up).
 */
export class PluginRegistry {
  inboundLayers: Layer<InboundContext>[] = []
  outboundLayers: Layer<OutboundContext>[] = []
  features: StreamFeature[] = []
  readonly handled: ((ctx: InboundContext) => void)[] = []
  readonly rawTaps: ((direction: 'in' | 'out', data: string | Uint8Array) => void)[] = []
  negotiator: Negotiator = featureNegotiator
  negotiatorOwner: string | undefined
  /** No more use() (first connect()). */
  frozen = false
  /** No more extensions through a context. */
  composed = false
  disposed = false
  timers: Set<Timer> | undefined
  readonly connection: Connection
  readonly host: RegistryHost
  #plugins: AnyPlugin[] = []
  /** Async setups still running: their dependents wait for them. */
  #running: Map<AnyPlugin, Promise<void>> | undefined
  /** Contexts with a signal or disposers. */
  #owners: Context[] | undefined
  #setups: Promise<void>[] | undefined
  #teardown: Promise<void> | undefined
  /** ready() was called: it takes async setup failures. */
  #awaited = false

  constructor(connection: Connection, host: RegistryHost) {
    this.connection = connection
    this.host = host
  }

  /** Trims the final plugin list to its size (idle connections add up). */
  freeze(): void {
    if (this.frozen) return
    this.frozen = true
    this.#plugins = this.#plugins.slice()
  }

  get hasAsyncSetups(): boolean {
    return this.#setups !== undefined
  }

  async ready(): Promise<void> {
    this.#awaited = true
    await Promise.all(this.#setups ?? [])
  }

  /** A plugin whose dependency's setup is async is set up once that finished. */
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
    assertSameCore(plugin)
    if (this.#plugins.some((p) => p.name === name)) {
      throw new PluginError('duplicate-plugin', name, `plugin "${name}" is already registered`)
    }
    const waits: Promise<void>[] = []
    for (const dependency of plugin.dependencies) {
      const registered = this.#find(dependency, name)
      const running = this.#running?.get(registered)
      if (running) waits.push(running)
    }
    this.#plugins.push(plugin)
    const ctx = new Context(this, plugin)
    try {
      const result = waits.length ? Promise.all(waits).then(() => ctx.runSetup()) : ctx.runSetup()
      if (isPromise(result)) this.#track(ctx, result)
      else ctx.setupDone(result)
    } catch (error) {
      this.#plugins.pop()
      throw error
    }
  }

  /** The registered plugin that is `plugin` or a with() variant of it. */
  #find(plugin: AnyPlugin, dependent: string): AnyPlugin {
    const origin = originOf(plugin)
    const found = this.#plugins.find((p) => originOf(p) === origin)
    if (found) return found
    const taken = this.#plugins.some((p) => p.name === plugin.name)
    throw new PluginError(
      'missing-dependency',
      dependent,
      taken
        ? `plugin "${dependent}" depends on plugin "${plugin.name}", but the plugin registered under that name is a different one (dependencies are plugin objects, not names)`
        : `plugin "${dependent}" depends on plugin "${plugin.name}", which is not registered: register "${plugin.name}" before "${dependent}"`,
    )
  }

  #track(ctx: Context, result: Promise<unknown>): void {
    const { name } = ctx.plugin
    const ms = this.host.timeouts.pluginSetup
    const message = `setup of plugin "${name}" did not finish within ${ms} ms`
    let timer: Timer | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new PluginError('setup-timeout', name, message)), ms)
    })
    const setup = Promise.race([result, timeout]).then(
      (api) => {
        clearTimeout(timer)
        this.#running?.delete(ctx.plugin)
        ctx.setupDone(api)
      },
      (error: unknown) => {
        clearTimeout(timer)
        const failure = error instanceof PluginError ? error : setupFailed(name, error)
        ctx.undo(failure)
        // Nobody waits yet: reported, not lost (a dependent's copy of the failure is not).
        if (!this.frozen && !this.#awaited && failure.plugin === name) this.host.report(failure)
        throw failure
      },
    )
    this.#running ??= new Map()
    this.#running.set(ctx.plugin, setup)
    // settled() reports failures; this only keeps the rejection from being unhandled.
    setup.then(undefined, reportedThroughSettled)
    this.#setups ??= []
    this.#setups.push(setup)
  }

  /** Every async setup finished; if one failed, everything is torn down, then it throws. */
  async settled(): Promise<void> {
    const results = await Promise.allSettled(this.#setups ?? [])
    const failed = results.find((r) => r.status === 'rejected')
    if (!failed) return
    await this.teardown()
    throw failed.reason
  }

  /** Runs once. */
  teardown(): Promise<void> {
    this.#teardown ??= this.#runTeardown()
    return this.#teardown
  }

  async #runTeardown(): Promise<void> {
    this.disposed = this.frozen = true
    for (const timer of this.timers ?? []) clearTimeout(timer)
    this.timers?.clear()
    const order = (ctx: Context) => this.#plugins.indexOf(ctx.plugin)
    const owners = (this.#owners ?? []).sort((a, b) => order(b) - order(a))
    for (const ctx of owners) await ctx.dispose()
    this.connection.hooks.clear()
  }

  keep(ctx: Context): void {
    // A literal for the first: an array grown by push keeps spare slots.
    if (!this.#owners) this.#owners = [ctx]
    else if (!this.#owners.includes(ctx)) this.#owners.push(ctx)
  }
}

/** What a plugin's setup() gets (documented on PluginContext). */
class Context implements PluginContext {
  readonly #registry: PluginRegistry
  readonly plugin: AnyPlugin
  #controller: AbortController | undefined
  #disposers: Disposer[] | undefined

  constructor(registry: PluginRegistry, plugin: AnyPlugin) {
    this.#registry = registry
    this.plugin = plugin
    undoLists.set(this, [])
  }

  /** A synchronous failure is undone here, an async one by the registry. */
  runSetup(): unknown {
    return recordingHandlers(this.hooks, this, () => {
      try {
        return this.plugin.setup(this, this.plugin.options)
      } catch (error) {
        const failure = setupFailed(this.plugin.name, error)
        this.undo(failure)
        throw failure
      }
    })
  }

  setupDone(api: unknown): void {
    undoLists.delete(this)
    ;(this.connection.plugins as Record<string, unknown>)[this.plugin.name] = api
  }

  /** While setup runs, keeps `fn` to undo it (Hooks.on hands its removers here). */
  onUndo(fn: () => void): void {
    undoLists.get(this)?.push(fn)
  }

  /** Removes what setup registered (latest first), aborts the signal; disposers never run. */
  undo(failure: PluginError): void {
    const undo = undoLists.get(this) ?? []
    undoLists.delete(this)
    this.#disposers = undefined
    for (let i = undo.length - 1; i >= 0; i--) undo[i]?.()
    this.#controller?.abort(failure)
  }

  async dispose(): Promise<void> {
    this.#controller?.abort(new ConnectionError('disposed', 'the connection was disposed'))
    const disposers = this.#disposers ?? []
    for (let i = disposers.length - 1; i >= 0; i--) {
      try {
        await disposers[i]?.()
      } catch (error) {
        const { name } = this.plugin
        const message = `teardown of plugin "${name}" failed: ${describe(error)}`
        this.#registry.host.report(new PluginError('teardown-failed', name, message, error))
      }
    }
  }

  get connection(): Connection {
    return this.#registry.connection
  }

  get hooks(): Hooks {
    return this.#registry.connection.hooks
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#registry.keep(this)
      this.#controller = new AbortController()
      if (this.#registry.disposed) {
        this.#controller.abort(new ConnectionError('disposed', 'the connection was disposed'))
      }
    }
    return this.#controller.signal
  }

  get<P extends AnyPlugin>(plugin: P): ApiOf<P> {
    const { name, dependencies } = this.plugin
    const origin = originOf(plugin)
    if (!dependencies.some((d) => originOf(d) === origin)) {
      throw new PluginError(
        'missing-dependency',
        name,
        `plugin "${name}" asked for plugin "${plugin.name}" without declaring it in dependencies`,
      )
    }
    return (this.connection.plugins as Record<string, unknown>)[plugin.name] as ApiOf<P>
  }

  inbound(fn: Middleware<InboundContext>, options?: MiddlewareOptions): void {
    const priority = options?.priority ?? 0
    this.#add(this.#registry.inboundLayers, { fn, plugin: this.#open(), priority }, priority)
  }

  outbound(fn: Middleware<OutboundContext>, options?: MiddlewareOptions): void {
    const priority = options?.priority ?? 0
    this.#add(this.#registry.outboundLayers, { fn, plugin: this.#open(), priority }, priority)
  }

  feature(feature: StreamFeature): void {
    const name = this.#open()
    const { features } = this.#registry
    if (features.some((f) => f.name === feature.name)) {
      const message = `stream feature "${feature.name}" is already registered`
      throw new PluginError('duplicate-feature', name, message)
    }
    this.#add(features, feature, feature.priority)
  }

  negotiation(negotiator: Negotiator): void {
    const name = this.#open()
    const registry = this.#registry
    const owner = registry.negotiatorOwner
    if (owner !== undefined) {
      throw new PluginError(
        'duplicate-negotiator',
        name,
        `plugin "${name}" tried to replace the negotiation strategy, which plugin "${owner}" already replaced: a connection has one`,
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

  /** The plugin's name; throws once the pipelines are composed. */
  #open(): string {
    const { name } = this.plugin
    if (!this.#registry.composed) return name
    throw new PluginError(
      'registry-frozen',
      name,
      `plugin "${name}" tried to extend the connection after the registry froze at connect(); do it in setup()`,
    )
  }

  /** Adds `item`, by `priority` when given (ties keep registration order), undoably. */
  #add<T>(list: T[], item: T, priority?: number): void {
    let i = list.length
    if (priority !== undefined) {
      while (i > 0 && (list[i - 1] as { priority: number }).priority > priority) i--
    }
    list.splice(i, 0, item)
    this.onUndo(() => {
      const at = list.indexOf(item)
      if (at >= 0) list.splice(at, 1)
    })
  }

  setTimeout(fn: () => void, ms: number): Timer {
    this.#registry.timers ??= new Set()
    const timers = this.#registry.timers
    const timer = setTimeout(() => {
      timers.delete(timer)
      fn()
    }, ms)
    timers.add(timer)
    this.onUndo(() => this.clearTimeout(timer))
    return timer
  }

  clearTimeout(timer: Timer | undefined): void {
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
    if (this.#disposers) this.#disposers.push(fn)
    else {
      this.#registry.keep(this)
      this.#disposers = [fn]
    }
  }
}

/** While a setup runs, how to undo it: off the context, which outlives setup. */
const undoLists = new WeakMap<Context, (() => void)[]>()

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

function reportedThroughSettled(): void {}
