export {
  type Discovery,
  type DiscoveryOptions,
  discoverWebSocket,
  type FetchLike,
  hostMeta,
  REL_WEBSOCKET,
} from './discovery.js'
export { WebSocketError, type WebSocketErrorCode } from './errors.js'
export { websocketFraming } from './framing.js'
export type {
  CloseEventLike,
  ErrorEventLike,
  MessageEventLike,
  WebSocketConstructor,
  WebSocketLike,
} from './websocket-api.js'
export {
  isWebSocketTransport,
  SUBPROTOCOL,
  type WebSocketOptions,
  WebSocketTransport,
  websocket,
} from './websocket-transport.js'
