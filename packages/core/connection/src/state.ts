/**
 * Connection states. A connection moves
 * disconnected → connecting → negotiating → online → disconnecting → disconnected,
 * and back to disconnected from any state when the transport fails.
 */
export type ConnectionState =
  | 'disconnected'
  | 'connecting'
  | 'negotiating'
  | 'online'
  | 'disconnecting'
