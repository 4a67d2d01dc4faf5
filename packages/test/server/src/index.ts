export { type TestCerts, testCerts } from './certs.js'
export { TestServerError, type TestServerErrorCode } from './errors.js'
export type { ServerEvent, ServerEventMap, ServerEventName, ServerEventOf } from './events.js'
export type {
  FaultName,
  Faults,
  SaslFailureCondition,
  Step,
  StepEvent,
  StepFilter,
} from './faults.js'
export {
  type ReceivedElement,
  startTestServer,
  TestServer,
  type TestServerOptions,
} from './server.js'
export type { Interceptor, TestSession } from './session.js'
export { NS_SM, type SmServerOptions } from './stream-management.js'
