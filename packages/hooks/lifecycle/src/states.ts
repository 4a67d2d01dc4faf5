import type { DisconnectReason } from '@core/connection'
import type { XMPPError } from '@core/errors'

/**
 * What the app sees of its connection, one value per change, on the `lifecycle` hook. A
 * `switch (s.state)` narrows the payload:
 * - `connecting`: an attempt at a fresh session started;
 * - `resuming`: an attempt started while a plugin (stream management) holds a resumable
 *   session; it resumes it if the server agrees, else a fresh session follows;
 * - `online`: the session is up; `resumed` says whether it is the previous one;
 * - `disconnected`: the stream ended without the app asking; `resumable` says whether the
 *   session can still be resumed; `cause` is the typed error, `reason` the core's class of it;
 * - `reconnecting`: attempt `attempt` (1, 2, ... since the last time online) starts in `delay` ms;
 * - `stopped`: the app stopped the connection (`stop()`, its AbortSignal, `disconnect()`);
 * - `permanent-error`: trying again would fail the same way (bad credentials, `conflict`,
 *   ...), or the attempts ran out; reported once, and nothing reconnects.
 */
export type LifecycleState =
  | { readonly state: 'connecting' }
  | { readonly state: 'resuming' }
  | { readonly state: 'online'; readonly resumed: boolean }
  | {
      readonly state: 'disconnected'
      readonly resumable: boolean
      readonly cause: XMPPError
      readonly reason: DisconnectReason
    }
  | { readonly state: 'reconnecting'; readonly attempt: number; readonly delay: number }
  | { readonly state: 'stopped' }
  | { readonly state: 'permanent-error'; readonly error: XMPPError }

export type LifecycleStateName = LifecycleState['state']

declare module '@core/connection' {
  interface HookMap {
    /** Every change of the connection's lifecycle state (from `@hooks/lifecycle`). */
    lifecycle: LifecycleState
    /**
     * A fresh session is fully established (bound, stream management enabled when on): fetch
     * the roster, send initial presence. `reconnected` is false the first time. Exactly one
     * of `post-connect` and `post-resume` runs per (re)connection.
     */
    'post-connect': { reconnected: boolean }
    /**
     * The previous session was resumed (XEP-0198): redo what must be redone although the
     * roster and subscriptions are still known. `downtime` is the time since the drop, in ms.
     */
    'post-resume': { downtime: number }
  }
}
