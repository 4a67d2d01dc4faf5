// Shared JSDoc types of the client adapters (no runtime code).

/**
 * @typedef {object} ClientConfig
 * @property {string} jid          user@domain
 * @property {string} password
 * @property {string} service      xmpp://host:port
 * @property {string} mechanism    the SASL mechanism both clients must use
 * @property {boolean} plaintext   no TLS (the scripted server); else STARTTLS, not verified
 * @property {((id: string | undefined, body: string | null) => void) | undefined} [onMessage]
 *   chat messages with a body (the send workload's `done`)
 * @property {boolean | undefined} [sm]      stream management on (the server offers it)
 * @property {boolean | undefined} [paced]   without SM, pause as the SM app does (ours only)
 * @property {RecvRoute | undefined} [recv]   the recv workload's stanzas (see shapes.mjs)
 * @property {{ salt: Uint8Array, saltedPassword: Uint8Array, iterations: number } | undefined} [scramCache]
 *   SCRAM's salted password for the server's salt and iteration count, cached by the app
 */

/**
 * @typedef {object} RecvRoute
 * @property {'chat' | 'groupchat' | 'presence' | 'iq-result'} route   how the app subscribes
 * @property {(stanza: import('ltx').Element) => void} handle   called with each such stanza
 */

/**
 * @typedef {object} BenchClient
 * @property {() => Promise<unknown>} connect    resolves when online
 * @property {() => Promise<unknown>} presence   sends initial presence
 * @property {(to: string, body: string) => Promise<unknown>} message   sends a chat message
 * @property {() => Promise<unknown>} ping       one XEP-0199 ping of the server
 * @property {() => Promise<unknown>} close      closes the stream
 */

export {}
