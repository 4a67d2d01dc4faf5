export { escapeLocal, isValidJID, JID, jid, sameBareJID, unescapeLocal } from './jid.js'
