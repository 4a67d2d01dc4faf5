export {
  type ConnectionOptions,
  type ConnectionTimeouts,
  Connection,
  createConnection,
  parseRedirect,
} from './connection.js'
export { Cancellation } from './cancellation.js'
export { Element } from 'ltx'
export {
  AbortError,
  ConnectionError,
  JIDError,
  PluginError,
  SASLError,
  StanzaError,
  StreamError,
  TimeoutError,
  XMPPError,
} from './errors.js'
export { featureNegotiator } from './feature-negotiator.js'
export {
  type Framing,
  NS_FRAMING,
  type StreamReader,
  websocketFraming,
  xmlStreamFraming,
} from './framing.js'
export {
  type FeatureResult,
  FeaturePriority,
  type NegotiationContext,
  type Negotiator,
  type StreamFeature,
  type WaitOptions,
} from './features.js'
export { type HookHandler, type HookMap, type HookName, Hooks } from './hooks.js'
export { type IqApi, iq, type RequestOptions } from './iq.js'
export { bareString, escapeLocal, isValidJID, JID, jid, sameBareJID, unescapeLocal } from './jid.js'
export {
  compose,
  type ElementKind,
  InboundContext,
  isStanzaName,
  type Middleware,
  type Next,
  OutboundContext,
  type StanzaName,
} from './middleware.js'
export { NS_CLIENT, NS_STANZA_ERRORS, NS_STREAM, NS_STREAM_ERRORS } from './namespaces.js'
export { type PacketLogApi, type PacketLogOptions, packetLog, redact } from './packet-log.js'
export {
  type AnyPlugin,
  type ApiOf,
  type ApisOf,
  definePlugin,
  type MiddlewareOptions,
  type Plugin,
  type PluginContext,
  type PluginDefinition,
} from './plugin.js'
export {
  type Handler,
  type IqHandler,
  type RouteContext,
  type RouteFilter,
  type RouterApi,
  router,
} from './router.js'
export type {
  Iq,
  IqType,
  Message,
  MessageType,
  Presence,
  PresenceType,
  StanzaTypes,
} from './stanza.js'
export type { ConnectionState } from './state.js'
export {
  StreamParser,
  type StreamParserHandlers,
  type StreamParserOptions,
} from './stream-parser.js'
export type { ConnectTarget, Transport, TransportEvents, TransportFactory } from './transport.js'
export { type XMLChild, xml } from './xml.js'
export { escapeAttr, escapeText, serialize, STREAM_FOOTER, streamHeader } from './xml-serializer.js'
