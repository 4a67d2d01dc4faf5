/** Namespaces of RFC 6120 that the core itself uses. */
export const NS_STREAM = 'http://etherx.jabber.org/streams'
export const NS_STREAM_ERRORS = 'urn:ietf:params:xml:ns:xmpp-streams'
export const NS_STANZA_ERRORS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
export const NS_CLIENT = 'jabber:client'
