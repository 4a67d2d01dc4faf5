import { SASLError } from '@core/errors'
import type { Credentials, MechanismSession } from './mechanism.js'
import { saslprep } from './saslprep.js'

export interface PlainOptions extends Credentials {
  /** Authorization identity, when it differs from the one the username gives. */
  authzid?: string | undefined
}

const encoder = new TextEncoder()

/**
 * PLAIN (RFC 4616): `authzid NUL authcid NUL passwd` in one message. It shows the password
 * to the server (and to anyone on the path without TLS): the plugin offers it only over TLS
 * unless told otherwise.
 */
export function createPlain(options: PlainOptions): MechanismSession {
  // RFC 4616 §2: identities and password are prepared with SASLprep (the server does the
  // same; preparing twice gives the same string) and may not contain NUL.
  const authcid = saslprep(options.username)
  const password = saslprep(options.password)
  const authzid = options.authzid ?? ''
  if (authzid.includes('\0')) {
    throw new SASLError('invalid-authzid', { message: 'PLAIN: the authzid contains NUL' })
  }
  if (authcid === '') {
    throw new SASLError('invalid-username', { message: 'PLAIN: the username is empty' })
  }
  return {
    name: 'PLAIN',
    start() {
      return encoder.encode(`${authzid}\0${authcid}\0${password}`)
    },
    async challenge() {
      // RFC 4616 §2: the exchange is one message; a challenge has no meaning here.
      throw new SASLError('invalid-server-message', {
        message: 'PLAIN: the server sent a challenge, which PLAIN does not have',
      })
    },
    async success() {
      // Nothing to verify: PLAIN gives the client no proof of the server's identity.
    },
  }
}
