import type { JID } from '@core/jid'
import type { xml } from '@core/xml'
import type { FaultName, Step, StepEvent } from './faults.js'
import type { TestSession } from './session.js'

type Element = ReturnType<typeof xml>

/** What the server reports, by event name. Every event is also kept in `server.log`. */
export interface ServerEventMap {
  /** A client connected. */
  connect: { readonly session: TestSession }
  /** The client opened a stream; `attrs` are its header's attributes. */
  header: {
    readonly session: TestSession
    readonly attrs: Readonly<Record<string, string>>
    readonly stream: number
  }
  /** The server read a top-level element from the client (also in `session.received`). */
  element: { readonly session: TestSession; readonly element: Element }
  /** A session reached a step (before faults apply). */
  step: StepEvent
  /** A fault was applied. */
  fault: {
    readonly session: TestSession
    readonly fault: FaultName
    readonly step: Step | undefined
  }
  /** The TLS handshake after STARTTLS succeeded. */
  tls: { readonly session: TestSession }
  /** The client chose a SASL mechanism. */
  auth: { readonly session: TestSession; readonly mechanism: string }
  /** SASL ended; `condition` is the failure condition sent. User names only, never passwords. */
  'auth-result': {
    readonly session: TestSession
    readonly mechanism: string
    readonly success: boolean
    readonly username: string | undefined
    readonly condition: string | undefined
  }
  /** A resource was bound. */
  bind: { readonly session: TestSession; readonly jid: JID }
  /**
   * A bound session handled a stanza from its client (what stream management counts in `h`):
   * each stanza the client sent that the server acted upon, once.
   */
  stanza: { readonly session: TestSession; readonly element: Element }
  /** Stream management (XEP-0198): a session was enabled, resumed, hibernated or expired. */
  sm: {
    readonly session: TestSession
    readonly event: 'enabled' | 'resumed' | 'failed' | 'hibernated' | 'expired'
    readonly id: string | undefined
  }
  /** A stanza was delivered to another session. */
  route: { readonly from: TestSession; readonly to: TestSession; readonly element: Element }
  /**
   * Bytes the client sent where nothing may be sent: after `<starttls/>` before the TLS
   * handshake, or after the stream was over. Raw text (latin1 for binary).
   */
  'unexpected-data': {
    readonly session: TestSession
    readonly data: string
    readonly when: 'after-starttls' | 'after-close'
  }
  /** The server sent a stream error. */
  'stream-error': { readonly session: TestSession; readonly condition: string }
  /** A bug in the server or in an interceptor; the session is closed with internal-server-error. */
  error: { readonly session: TestSession; readonly error: unknown }
  /**
   * An external component (XEP-0114): `outcome` is 'online' after its handshake, 'closed'
   * when its connection ended, or the stream error condition the server refused it with
   * (`not-authorized`, `conflict`, `host-unknown`, ...).
   */
  component: { readonly domain: string; readonly outcome: string }
  /** The socket closed. `clean`: the client had sent `</stream:stream>` first. */
  close: { readonly session: TestSession; readonly clean: boolean }
}

export type ServerEventName = keyof ServerEventMap

/** One event of `server.log`: its name as `type`, and its fields. */
export type ServerEventOf<K extends ServerEventName> = { readonly type: K } & ServerEventMap[K]

export type ServerEvent = { [K in ServerEventName]: ServerEventOf<K> }[ServerEventName]
