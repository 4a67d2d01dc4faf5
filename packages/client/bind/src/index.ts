export { type BindApi, type BindOptions, bind, NS_BIND, NS_SESSION } from './bind.js'
export { BindError } from './errors.js'
