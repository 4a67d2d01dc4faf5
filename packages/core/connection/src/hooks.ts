import type { Element } from '@core/xml'
import type { XMPPError } from '@core/errors'
import { reportToStderr } from './error-report.js'
import type { ConnectionState } from './state.js'

/**
 * Hook names and their payloads; packages add names by declaration merging
 * (`declare module '@core/connection' { interface HookMap { ... } }`).
 */
export interface HookMap {
  /** Every state change, with what caused it. */
  state: { state: ConnectionState; previous: ConnectionState; cause?: Error | undefined }
  /** The stream header the peer sent (after every restart). */
  'stream-start': { attrs: Readonly<Record<string, string>> }
  /** disconnect() is about to close an online stream: the last moment to send (awaited). */
  closing: Record<string, never>
  /** The app called disconnect() or dispose(): nothing should start a new attempt itself. */
  stop: Record<string, never>
  /** Negotiation finished; `resumed`: a previous session was resumed. */
  online: { resumed: boolean }
  /**
   * The transport is gone; `error` unless the close was requested and clean. When
   * `resumable`, `session-end` waits for the plugin that can resume.
   */
  disconnected: {
    error?: XMPPError | undefined
    clean: boolean
    reason: DisconnectReason
    resumable: boolean
  }
  /** The session is over for good: pending requests should fail. */
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
 * Why a stream ended: `stopped` (disconnect(), peer closed in time), `close-timeout` (it did
 * not), `stream-error` (ours or the peer's), `peer-closed` (without error), `timeout` (a
 * connect or negotiation step), `dropped` (transport failure, or a step failed).
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

/** While a plugin's setup runs: takes every handler's remover (undone on failure). */
const recorders = new WeakMap<Hooks, { onUndo(off: () => void): void }>()

/** Runs `fn` with `recorder` taking the remover of every handler added meanwhile. @internal */
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

/** Handlers run in registration order; with only synchronous ones, emit() returns undefined. */
export class Hooks {
  /** A plain object, smaller than a Map for the few names in use. */
  #handlers = Object.create(NO_MEMBERS) as Handlers
  /** Pending next() calls, rejected by clear(); created on first use. */
  #nexts: Set<(error: Error) => void> | undefined
  readonly #report: ((error: unknown, hook: HookName) => void) | undefined

  constructor(report?: (error: unknown, hook: HookName) => void) {
    this.#report = report
  }

  /** A failure with no `onError`: to `report`, else stderr. A subclass may take it instead. */
  protected failed(error: unknown, hook: HookName): void {
    if (this.#report) this.#report(error, hook)
    else reportToStderr(error instanceof Error ? error : new Error(String(error)))
  }

  /** Adds a handler; returns a function that removes it. */
  on<K extends HookName>(name: K, handler: HookHandler<K>): () => void {
    const list = this.#handlers[name]
    const h = handler as HookHandler<HookName>
    // Copy on write: an emit in progress keeps its list. A literal for the first handler: a
    // spread array keeps spare slots (idle connections add up).
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
   * Runs the handlers in order; a failing one is reported (through `onError` if given) and
   * the rest still run.
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

  /** The rest of an emit() once a handler returned a promise. */
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
