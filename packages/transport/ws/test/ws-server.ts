// An in-process WebSocket server (the `ws` package's) that a test scripts message by
// message: what the client sent, and what goes back, including hostile frames.
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { type WebSocket, WebSocketServer } from 'ws'

export interface WsPeer {
  readonly socket: WebSocket
  /** Every message the client sent, in order (binary ones as '<binary>'). */
  readonly messages: string[]
  /** The subprotocols the client offered. */
  readonly offered: string[]
  /** The next message not yet taken by nextMessage(). */
  nextMessage(timeout?: number): Promise<string>
  /** Resolves with the close code once the WebSocket is closed. */
  readonly closed: Promise<number>
}

export interface WsServer {
  readonly port: number
  url(path?: string): string
  /** The next connection not yet taken by nextPeer(). */
  nextPeer(timeout?: number): Promise<WsPeer>
  readonly peers: WsPeer[]
  /** wss only: TLS handshakes that failed on the server's side (a client's alert, say). */
  readonly tlsErrors: Error[]
  close(): Promise<void>
}

export async function startWsServer(
  options: {
    protocol?: string | false
    onPeer?: (peer: WsPeer) => void
    /** Serve wss:// (as `localhost`) with this certificate. */
    tls?: { cert: string; key: string }
  } = {},
): Promise<WsServer> {
  const handleProtocols = () => (options.protocol === undefined ? 'xmpp' : options.protocol)
  const https = options.tls ? createHttpsServer(options.tls) : undefined
  const wss = https
    ? new WebSocketServer({ server: https, handleProtocols })
    : new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols })
  if (https) await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve))
  else await new Promise<void>((resolve) => wss.once('listening', resolve))
  const tlsErrors: Error[] = []
  https?.on('tlsClientError', (error) => tlsErrors.push(error))
  const port = ((https ?? wss).address() as AddressInfo).port
  const base = https ? `wss://localhost:${port}` : `ws://127.0.0.1:${port}`
  const peers: WsPeer[] = []
  let taken = 0
  const waiting: (() => void)[] = []
  wss.on('connection', (socket, request) => {
    const messages: string[] = []
    let read = 0
    const wake: (() => void)[] = []
    socket.on('message', (data, isBinary) => {
      messages.push(isBinary ? '<binary>' : data.toString())
      for (const fn of wake.splice(0)) fn()
    })
    const peer: WsPeer = {
      socket,
      messages,
      offered: String(request.headers['sec-websocket-protocol'] ?? '')
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean),
      nextMessage: (timeout = 3000) =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no message from the client')), timeout)
          const check = () => {
            if (read < messages.length) {
              clearTimeout(timer)
              resolve(messages[read++] as string)
            } else wake.push(check)
          }
          check()
        }),
      closed: new Promise((resolve) => socket.once('close', (code) => resolve(code))),
    }
    peers.push(peer)
    options.onPeer?.(peer)
    for (const fn of waiting.splice(0)) fn()
  })
  return {
    port,
    url: (path = '/xmpp-websocket') => `${base}${path}`,
    peers,
    tlsErrors,
    nextPeer: (timeout = 3000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no connection')), timeout)
        const check = () => {
          if (taken < peers.length) {
            clearTimeout(timer)
            resolve(peers[taken++] as WsPeer)
          } else waiting.push(check)
        }
        check()
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate()
        wss.close(() => {
          if (https) https.close(() => resolve())
          else resolve()
        })
      }),
  }
}

export const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing'

/** The server's `<open/>` for domain `localhost`. */
export function serverOpen(domain = 'localhost'): string {
  return `<open xmlns='${FRAMING}' from='${domain}' id='s1' version='1.0' xml:lang='en'/>`
}

/** An empty features element (the stream is then online without negotiation). */
export const NO_FEATURES = "<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>"
