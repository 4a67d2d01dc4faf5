export { SmError, type SmErrorCode } from './errors.js'
export type { SmSnapshot } from './snapshot.js'
export { NS_DELAY, NS_SM, type SmApi, type SmOptions, sm } from './sm.js'
