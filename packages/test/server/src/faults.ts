import type { xml } from '@core/xml'
import type { TestSession } from './session.js'

type Element = ReturnType<typeof xml>

/**
 * The points of a session at which the server acts, named for what it is about to do. Each
 * stream (initial, after STARTTLS, after SASL) passes 'header' and 'features' again.
 *
 * | step | when | what the server is about to send |
 * |---|---|---|
 * | `connect` | a client connected | nothing (it waits for the stream header) |
 * | `header` | the client's stream header was read | its own stream header |
 * | `features` | right after its header | `<stream:features/>` |
 * | `starttls` | `<starttls/>` was read | `<proceed/>`, then the TLS handshake |
 * | `tls` | the TLS handshake is done | nothing (it waits for the new header) |
 * | `auth` | `<auth/>` was read | SCRAM's first `<challenge/>`, PLAIN's `<success/>`, or `<failure/>` |
 * | `response` | a SASL `<response/>` was read | SCRAM's `<success/>` (with `v=`), or `<failure/>` |
 * | `bind` | the resource-binding iq was read | the iq result with the full JID |
 * | `session` | a legacy session iq was read | its iq result |
 * | `iq` | any other iq was read | its answer, or routes it to another client |
 * | `message` | a message was read | routes it (or bounces an error) |
 * | `presence` | a presence was read | nothing (presence is accepted and not broadcast) |
 * | `close` | the client's `</stream:stream>` was read | `</stream:stream>`, then it closes the socket |
 */
export type Step =
  | 'connect'
  | 'header'
  | 'features'
  | 'starttls'
  | 'tls'
  | 'auth'
  | 'response'
  | 'bind'
  | 'session'
  | 'iq'
  | 'message'
  | 'presence'
  | 'close'

/** A step reached by a session; what step filters and the `step` event see. */
export interface StepEvent {
  readonly step: Step
  readonly session: TestSession
  /** The client's element being answered; undefined at connect, header, features and tls. */
  readonly element: Element | undefined
  /** Which stream of the session this is: 1, then 2 after STARTTLS or SASL, and so on. */
  readonly stream: number
}

/** Selects steps: a step name, a list of names, or a predicate (to match an element, a stream). */
export type StepFilter = Step | readonly Step[] | ((event: StepEvent) => boolean)

/** SASL failure conditions (RFC 6120 §6.5). */
export type SaslFailureCondition =
  | 'aborted'
  | 'account-disabled'
  | 'credentials-expired'
  | 'encryption-required'
  | 'incorrect-encoding'
  | 'invalid-authzid'
  | 'invalid-mechanism'
  | 'malformed-request'
  | 'mechanism-too-weak'
  | 'not-authorized'
  | 'temporary-auth-failure'

/**
 * Faults to inject. `server.faults` is copied into each new session when it connects (so a
 * change applies to the next sessions); `session.faults` changes one live session.
 */
export interface Faults {
  /** Apply these faults to the next session only; the server's faults then reset to `{}`. */
  once?: boolean
  /**
   * Destroy the socket once the server has read this many bytes (after TLS decryption) from
   * the client, counted from the first read after resource binding. The bytes up to the limit
   * are still handled. 0 drops the session right after the bind result.
   */
  closeAfterBytes?: number
  /**
   * Destroy the socket once the server has read and handled this many top-level elements
   * from the client after resource binding (the bind iq itself is not counted). 0 drops the
   * session right after the bind result.
   */
  closeAfterStanzas?: number
  /** Wait `ms` before acting at the matching steps; later output waits behind it, in order. */
  delay?: { readonly step: StepFilter; readonly ms: number }
  /**
   * Never act at the matching steps: no answer, no routing. `inject` and `closeAtStep` still
   * apply: with `inject` at the same step, the injected data replaces the answer.
   */
  withhold?: StepFilter
  /**
   * Send raw data at the matching steps, right after the step's own output, in the same write
   * (instead of it when the step is also withheld).
   */
  inject?: { readonly step: StepFilter; readonly data: string | Uint8Array }
  /**
   * Destroy the socket at the matching steps instead of acting (after `inject` data, if any),
   * withheld or not.
   */
  closeAtStep?: StepFilter
  /** SCRAM: send a wrong server signature (`v=`) in `<success/>`. */
  badServerSignature?: boolean
  /** SCRAM: send `<success/>` without the server signature. */
  omitServerSignature?: boolean
  /** Fail SASL with this condition where success was due (PLAIN at `auth`, SCRAM at `response`). */
  saslFailure?: SaslFailureCondition
  /** Never answer `<auth/>` or `<response/>`. */
  neverAnswerSasl?: boolean
  /**
   * `false`: do not offer STARTTLS, and offer SASL in plaintext instead, as a stripping
   * attacker would. A `<starttls/>` sent anyway is still honoured.
   */
  offerStarttls?: boolean
  /** Destroy the socket when `<starttls/>` is read, without answering. */
  dropOnStarttls?: boolean
  /** Answer `<starttls/>` with `<failure/>` and close the stream (RFC 6120 §5.4.2.2). */
  starttlsFailure?: boolean
  /**
   * Proceed, then silence: answer `<starttls/>` with `<proceed/>`, then never take part in the
   * TLS handshake. What the client sends afterwards (its TLS hello) is read and discarded
   * (reported as `unexpected-data`); the socket stays open.
   */
  silenceAfterProceed?: boolean
  /**
   * `false`: after authentication, offer no `<bind/>` (only the optional legacy session). A
   * bind request sent anyway is still answered.
   */
  offerBind?: boolean
  /**
   * Answer the bind request with this JID (any text) instead of the one bound, as a server
   * that binds the client to another account would. Routing still uses the real binding.
   */
  bindJid?: string
  /** Stream management: never answer `<r/>` (XEP-0198 §4). */
  smWithholdAcks?: boolean
  /** Stream management: answer `<r/>` with an `h` this much above the real count. */
  smAckTooHigh?: number
  /** Stream management: answer `<r/>` with this text as `h` (a malformed count). */
  smMalformedH?: string
  /**
   * Stream management: answer `<resume/>` with `<failed/>` (`item-not-found`, with the `h`
   * of the session when it is known), as after a server restart. The session is dropped.
   */
  smRefuseResume?: boolean
}

/** The name of a fault, as reported by the `fault` event. */
export type FaultName = Exclude<keyof Faults, 'once'>

export function matchesStep(filter: StepFilter | undefined, event: StepEvent): boolean {
  if (filter === undefined) return false
  if (typeof filter === 'string') return filter === event.step
  if (typeof filter === 'function') return filter(event)
  return filter.includes(event.step)
}
