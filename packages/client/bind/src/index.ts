export { type BindApi, type BindOptions, bind, NS_BIND, NS_SESSION } from './bind.js'
export { BindError, type BindErrorCode } from './errors.js'
