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
