export { type PacketLogApi, type PacketLogOptions, packetLog, redact } from './packet-log.js'
