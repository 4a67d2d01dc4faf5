export { NS_PING, type PingApi, type PingOptions, ping } from './ping.js'
