import type { Element } from '@core/xml'

/** RFC 6121 §5.2.2 message types. */
export type MessageType = 'chat' | 'error' | 'groupchat' | 'headline' | 'normal'
/** RFC 6121 §4.7.1 / RFC 6120 §8.2.3 presence types (absent means available). */
export type PresenceType =
  | 'error'
  | 'probe'
  | 'subscribe'
  | 'subscribed'
  | 'unavailable'
  | 'unsubscribe'
  | 'unsubscribed'
/** RFC 6120 §8.2.3 iq types. */
export type IqType = 'get' | 'set' | 'result' | 'error'

interface CommonAttributes {
  to?: string
  from?: string
  id?: string
  'xml:lang'?: string
  [attribute: string]: unknown
}

export type Message = Element & { attrs: CommonAttributes & { type?: MessageType } }
export type Presence = Element & { attrs: CommonAttributes & { type?: PresenceType } }
export type Iq = Element & { attrs: CommonAttributes & { type: IqType; id: string } }

export interface StanzaTypes {
  message: Message
  presence: Presence
  iq: Iq
}
