/** Who logs in. */
export interface Credentials {
  username: string
  password: string
}

/**
 * One SASL mechanism run (RFC 4422 §3): the client side of a single authentication
 * exchange. Data is raw bytes; the XMPP layer does the base64 (RFC 6120 §6.4).
 */
export interface MechanismSession {
  readonly name: string
  /**
   * The initial response sent with `<auth/>` (RFC 4422 §3.3). Mechanisms whose first message
   * needs no I/O return it directly: the `<auth/>` then leaves in the same tick.
   */
  start(): Uint8Array | Promise<Uint8Array>
  /** Answers a server challenge. Throws SASLError when the challenge is unacceptable. */
  challenge(data: Uint8Array): Promise<Uint8Array>
  /**
   * The server reported success, with its additional data or undefined when none came
   * (RFC 6120 §6.3.10). Throws SASLError when the server did not prove itself.
   */
  success(data: Uint8Array | undefined): Promise<void>
  /** The server reported `<failure/>` (RFC 6120 §6.4.5): forget what this login kept. */
  failed?(): Promise<void>
}
