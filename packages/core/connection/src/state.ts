/** connecting → negotiating → online → disconnecting → disconnected (at once on failure). */
export type ConnectionState =
  | 'disconnected'
  | 'connecting'
  | 'negotiating'
  | 'online'
  | 'disconnecting'
