export { type IqApi, iq, type RequestOptions } from './iq.js'
