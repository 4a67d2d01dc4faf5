import { randomBytes } from 'node:crypto'
import type { JID } from '@core/jid'

/** XEP-0198 §2. */
export const NS_SM = 'urn:xmpp:sm:3'

/** Stream management settings of the test server (`startTestServer({ sm })`). */
export interface SmServerOptions {
  /**
   * How long a dropped resumable session is kept for resumption (its hibernation), in ms.
   * Default 30,000. 0: a dropped session is gone at once (a resume then gets `<failed/>`).
   */
  hibernation?: number
  /** The `max` advertised in `<enabled/>`, in seconds. Default: none. */
  max?: number
  /** The `location` advertised in `<enabled/>`. Default: none. */
  location?: string
  /**
   * Both counters of a new session start here instead of 0, to exercise the wrap at 2^32
   * (a client must be told the same: `@xep/0198-sm`'s `counterStart`). Default 0.
   */
  counterStart?: number
}

/**
 * The server's side of one stream management session (XEP-0198): it outlives the socket
 * while the session hibernates, and moves to the session that resumes it.
 */
export class SmRecord {
  readonly id = randomBytes(9).toString('base64url')
  readonly username: string
  readonly jid: JID
  readonly resumable: boolean
  /** Stanzas received from the client and handled (the `h` we report), mod 2^32. */
  inbound: number
  /** The client's last `h`. */
  acked: number
  /** Stanzas sent to the client and not acknowledged, in order. */
  readonly unacked: string[] = []
  #head = 0
  /** Set while the session hibernates. */
  expiry: NodeJS.Timeout | undefined

  constructor(username: string, jid: JID, resumable: boolean, counterStart: number) {
    this.username = username
    this.jid = jid
    this.resumable = resumable
    this.inbound = counterStart >>> 0
    this.acked = counterStart >>> 0
  }

  get pending(): number {
    return this.unacked.length - this.#head
  }

  /** The stanzas still unacknowledged, oldest first. */
  pendingStanzas(): string[] {
    return this.unacked.slice(this.#head)
  }

  sent(data: string): void {
    this.unacked.push(data)
  }

  received(): void {
    this.inbound = (this.inbound + 1) >>> 0
  }

  /**
   * The client acknowledged up to `h` (XEP-0198 §4). Returns false when `h` is beyond what
   * was sent (nothing is changed then).
   */
  ack(h: number): boolean {
    const n = (h - this.acked) >>> 0
    if (n > this.pending) return false
    this.#head += n
    this.acked = h >>> 0
    if (this.#head > 1024 && this.#head * 2 > this.unacked.length) {
      this.unacked.splice(0, this.#head)
      this.#head = 0
    }
    return true
  }

  /** The count of stanzas sent, mod 2^32. */
  get outbound(): number {
    return (this.acked + this.pending) >>> 0
  }
}

/** xs:unsignedInt, strictly (the client's `h`). */
export function parseH(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^\s*\+?\d{1,20}\s*$/.test(value)) return undefined
  const n = Number(value.trim())
  return n <= 0xffffffff ? n : undefined
}
