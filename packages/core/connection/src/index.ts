export {
  Connection,
  type ConnectionOptions,
  type ConnectionTimeouts,
  createConnection,
} from './connection.js'
export { featureNegotiator } from './feature-negotiator.js'
export {
  type FeatureResult,
  FeaturePriority,
  type NegotiationContext,
  type Negotiator,
  type StreamFeature,
  type WaitOptions,
} from './features.js'
export {
  type Framing,
  type StreamReader,
  xmlStreamFraming,
} from './framing.js'
export {
  type DisconnectReason,
  type HookHandler,
  type HookMap,
  type HookName,
  Hooks,
} from './hooks.js'
export {
  type ElementKind,
  InboundContext,
  type Middleware,
  type Next,
  OutboundContext,
  type StanzaName,
  type WrittenText,
} from './middleware.js'
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
export type { ConnectTarget, Transport, TransportEvents, TransportFactory } from './transport.js'
