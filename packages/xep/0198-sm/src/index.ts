export { AckQueue, Held } from './ack-queue.js'
export { advance, COUNTER_MODULUS, distance, parseUnsignedInt } from './counter.js'
export { SmError, type SmErrorCode } from './errors.js'
export { NS_DELAY, NS_SM, parseLocation, type SmApi, type SmOptions, sm } from './sm.js'
