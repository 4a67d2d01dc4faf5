import type { Element } from '@core/xml'
import type { XMPPError } from '@core/errors'
import { reportToStderr } from './error-report.js'
import type { ConnectionState } from './state.js'

/**
 * Named, typed events. Each value is the payload handed to handlers of that hook.
 * Packages add hook names by declaration merging:
 *
 * ```ts
 * declare module '@core/connection' {
 *   interface HookMap { 'post-resume': { resumed: true } }
 * }
 * ```
 */
export interface HookMap {
  /** Every state change, with what caused it. */
  state: { state: ConnectionState; previous: ConnectionState; cause?: Error | undefined }
  /** The stream header the peer sent (after every restart). */
  'stream-start': { attrs: Readonly<Record<string, string>> }
  /**
   * disconnect() is about to close an online stream: the last moment to send on it (the
   * stream is still online). Awaited before the closing starts.
   */
  closing: Record<string, never>
  /**
   * The app called disconnect() (or dispose()), whatever the state: nothing should start a
   * new attempt on its own (a reconnection plugin cancels its pending retry).
   */
  stop: Record<string, never>
  /** Stream negotiation finished; `resumed` says whether a previous session was resumed. */
  online: { resumed: boolean }
  /**
   * The transport is gone. `error` is set unless the close was requested and clean;
   * `reason` tells the causes apart; `resumable` says whether a plugin (stream management)
   * can resume the session, in which case `session-end` waits for that plugin.
   */
  disconnected: {
    error?: XMPPError | undefined
    clean: boolean
    reason: DisconnectReason
    resumable: boolean
  }
  /**
   * The session is over for good (not resumable): pending requests should fail. A plugin
   * that can resume sessions (stream management) delays this until resumption failed.
   */
  'session-end': { error?: XMPPError | undefined }
  /** The peer asked us to reconnect elsewhere (RFC 6120 §4.9.3.19). */
  redirect: { host: string; port?: number | undefined; count: number }
  /** An error that is reported, not thrown: a failing handler, a stream error. */
  error: { error: Error }
  /** A stanza that reached the end of the inbound pipeline: the app's catch-all. */
  stanza: { element: Element; name: 'message' | 'presence' | 'iq' }
  /** A nonza that reached the end of the inbound pipeline. */
  nonza: { element: Element }
}

/**
 * Why a stream ended:
 * - `stopped`: the app called disconnect() (or dispose()), and the peer closed in time;
 * - `close-timeout`: the app called disconnect() and the peer did not close in time;
 * - `stream-error`: a stream error, ours or the peer's (`error.condition` says which);
 * - `peer-closed`: the peer closed its stream without an error;
 * - `timeout`: a connect or negotiation step did not finish in time;
 * - `dropped`: the transport failed or closed under us (network, TLS), or a step failed.
 */
export type DisconnectReason =
  | 'stopped'
  | 'close-timeout'
  | 'stream-error'
  | 'peer-closed'
  | 'timeout'
  | 'dropped'

export type HookName = keyof HookMap
export type HookHandler<K extends HookName> = (payload: HookMap[K]) => void | Promise<void>

type Handlers = { [K in HookName]?: HookHandler<HookName>[] | undefined }
/** Their prototype has none: a hook named like an Object.prototype member reads nothing. */
const NO_MEMBERS: object = Object.freeze(Object.create(null))

/** While a plugin's setup runs, by Hooks: takes every handler's remover (undone on failure). */
const recorders = new WeakMap<Hooks, { onUndo(off: () => void): void }>()

/**
 * Runs `fn` with `recorder` taking the remover of every handler added to `hooks` meanwhile.
 * @internal
 */
export function recordingHandlers<T>(
  hooks: Hooks,
  recorder: { onUndo(off: () => void): void },
  fn: () => T,
): T {
  const outer = recorders.get(hooks)
  recorders.set(hooks, recorder)
  try {
    return fn()
  } finally {
    if (outer) recorders.set(hooks, outer)
    else recorders.delete(hooks)
  }
}

/**
 * Hooks run their handlers in registration order, awaiting each. When every handler is
 * synchronous, emit() is synchronous too and returns undefined (no promise per call).
 */
export class Hooks {
  /** By hook name: a plain object rather than a Map, smaller for the few names in use. */
  #handlers = Object.create(NO_MEMBERS) as Handlers
  /** Pending next() calls, rejected by clear(); created on first use. */
  #nexts: Set<(error: Error) => void> | undefined
  readonly #report: ((error: unknown, hook: HookName) => void) | undefined

  constructor(report?: (error: unknown, hook: HookName) => void) {
    this.#report = report
  }

  /**
   * Where a handler's failure goes when emit() was given no `onError`: the constructor's
   * `report` (one line on stderr without one: errors never vanish). A subclass may take it
   * instead (the connection does: no closure per instance).
   */
  protected failed(error: unknown, hook: HookName): void {
    if (this.#report) this.#report(error, hook)
    else reportToStderr(error instanceof Error ? error : new Error(String(error)))
  }

  /** Adds a handler; returns a function that removes it. */
  on<K extends HookName>(name: K, handler: HookHandler<K>): () => void {
    const list = this.#handlers[name]
    const h = handler as HookHandler<HookName>
    // Copy on write: an emit in progress keeps iterating the list it started with. A literal
    // for the first handler: a spread array keeps spare slots (idle connections add up).
    this.#handlers[name] = list ? [...list, h] : [h]
    const off = () => this.off(name, handler)
    recorders.get(this)?.onUndo(off)
    return off
  }

  /** Adds a handler that runs once. */
  once<K extends HookName>(name: K, handler: HookHandler<K>): () => void {
    const off = this.on(name, (payload) => {
      off()
      return handler(payload)
    })
    return off
  }

  off<K extends HookName>(name: K, handler: HookHandler<K>): void {
    const next = this.#handlers[name]?.filter((h) => h !== handler)
    this.#handlers[name] = next?.length ? next : undefined
  }

  has(name: HookName): boolean {
    return this.#handlers[name] !== undefined
  }

  /** Resolves on the next emission of `name`. */
  next<K extends HookName>(name: K): Promise<HookMap[K]> {
    return new Promise((resolve, reject) => {
      this.#nexts ??= new Set()
      const nexts = this.#nexts
      const off = this.once(name, (payload) => {
        nexts.delete(fail)
        resolve(payload)
      })
      const fail = (error: Error) => {
        off()
        reject(error)
      }
      nexts.add(fail)
    })
  }

  /**
   * Runs the handlers in order. A handler that throws or rejects is reported through the
   * `error` hook (or to the connection's reporter for the `error` hook itself) and the
   * remaining handlers still run. With `onError`, the emitter takes those errors instead
   * (a plugin that acts on a failing handler, e.g. ends the session).
   */
  emit<K extends HookName>(
    name: K,
    payload: HookMap[K],
    onError?: (error: unknown) => void,
  ): Promise<void> | undefined {
    const list = this.#handlers[name]
    for (let i = 0; list && i < list.length; i++) {
      let result: void | Promise<void>
      try {
        result = (list[i] as HookHandler<K>)(payload)
      } catch (error) {
        this.#failed(error, name, onError)
        continue
      }
      if (result !== undefined && typeof result.then === 'function') {
        return this.#finishAsync(result, list, i + 1, name, payload, onError)
      }
    }
    return undefined
  }

  /** The rest of an emit() once a handler returned a promise: each handler is awaited. */
  async #finishAsync<K extends HookName>(
    pending: Promise<void>,
    list: HookHandler<HookName>[],
    from: number,
    name: K,
    payload: HookMap[K],
    onError: ((error: unknown) => void) | undefined,
  ): Promise<void> {
    try {
      await pending
    } catch (error) {
      this.#failed(error, name, onError)
    }
    for (let i = from; i < list.length; i++) {
      try {
        await (list[i] as HookHandler<K>)(payload)
      } catch (error) {
        this.#failed(error, name, onError)
      }
    }
  }

  #failed(error: unknown, name: HookName, onError: ((error: unknown) => void) | undefined): void {
    if (onError) onError(error)
    else this.failed(error, name)
  }

  /** Removes every handler; pending next() promises reject. */
  clear(): void {
    this.#handlers = Object.create(NO_MEMBERS) as Handlers
    const nexts = this.#nexts
    this.#nexts = undefined
    for (const fail of nexts ?? []) fail(new Error('the hooks were cleared (connection disposed)'))
  }
}
