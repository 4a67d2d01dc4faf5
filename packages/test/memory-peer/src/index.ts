export {
  connectToMemoryPeer,
  MemoryPeer,
  type MemoryPeerOptions,
  MemoryTransport,
} from './memory-peer.js'
