export {
  TcpError,
  type TcpErrorCode,
  TLSError,
  type TLSErrorCode,
} from './errors.js'
export { parseService, type ServiceAddress, type TlsMode } from './service.js'
export {
  DEFAULT_PORTS,
  orderSrv,
  type ResolveOptions,
  resolveTargets,
  type SrvRecord,
  type SrvResolver,
  systemSrvResolver,
  type TcpTarget,
} from './srv.js'
export { NS_TLS, type StartTlsOptions, starttls } from './starttls.js'
export { isTcpTransport, type TcpOptions, TcpTransport, tcp } from './tcp-transport.js'
export { ALPN_CLIENT, type PemCertificates, type TlsSettings } from './tls-verify.js'
