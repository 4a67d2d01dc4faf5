// A WebSocket front (RFC 7395) for the test server, the way a server's WebSocket module sits
// in front of its XML streams: each WebSocket gets its own TCP connection to the server's
// port, and the front translates between RFC 7395 messages and the RFC 6120 stream. Sessions
// (and faults) are the server's own; the front adds framing only.
import { type AddressInfo, connect } from 'node:net'
import {
  type Element,
  NS_STREAM,
  STREAM_FOOTER,
  serialize,
  StreamParser,
  streamHeader,
} from '@core/xml'
import { WebSocketServer } from 'ws'

const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing'

export interface WebSocketFront {
  readonly port: number
  close(): Promise<void>
}

/** Listens on 127.0.0.1 (any free port) and relays to `host:port`. */
export async function startWebSocketFront(host: string, port: number): Promise<WebSocketFront> {
  const wss = new WebSocketServer({
    host,
    port: 0,
    // RFC 7395 §3.1: only the `xmpp` subprotocol; a client that does not offer it is refused.
    handleProtocols: (protocols) => (protocols.has('xmpp') ? 'xmpp' : false),
  })
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve)
    wss.once('error', reject)
  })
  wss.on('connection', (ws) => {
    const tcp = connect({ host, port })
    const toClient = (data: string) => {
      if (ws.readyState === ws.OPEN) ws.send(data)
    }
    let reader: StreamParser | undefined
    // A fresh reader of the server's stream for each stream the client opens (a restart:
    // RFC 7395 §3.7).
    const readServerStream = () => {
      reader?.stop()
      reader = new StreamParser(
        {
          streamStart(attrs) {
            let open = `<open xmlns='${NS_FRAMING}'`
            for (const [k, v] of Object.entries(attrs)) {
              if (k !== 'xmlns' && !k.startsWith('xmlns:')) open += ` ${k}='${v}'`
            }
            toClient(`${open}/>`)
          },
          element(el: Element) {
            // RFC 7395 §3.3.3: each message declares its namespaces.
            if (el.name.startsWith('stream:')) el.attrs['xmlns:stream'] = NS_STREAM
            else el.attrs.xmlns ??= 'jabber:client'
            toClient(serialize(el))
          },
          streamEnd() {
            toClient(`<close xmlns='${NS_FRAMING}'/>`)
          },
          error() {
            ws.close(1011)
          },
        },
        // The server bounds what clients send; what it sends itself is trusted here.
        { maxStanzaSize: 16 * 1024 * 1024 },
      )
    }
    tcp.on('data', (chunk) => reader?.write(chunk))
    tcp.on('close', () => ws.close(1000))
    tcp.on('error', () => ws.close(1011))
    ws.on('message', (data, isBinary) => {
      const text = data.toString()
      // Whatever the client sent goes to the session as it was (a hostile message stays
      // hostile), except the framing elements, which become the stream's own.
      if (!isBinary && /^<open[\s/]/.test(text)) {
        let attrs: Record<string, string>
        try {
          attrs = openAttributes(text)
        } catch {
          tcp.write(text)
          return
        }
        const { xmlns: _framing, ...rest } = attrs
        readServerStream()
        tcp.write(streamHeader({ ...rest, xmlns: 'jabber:client', 'xmlns:stream': NS_STREAM }))
      } else if (!isBinary && /^<close[\s/]/.test(text)) {
        tcp.end(STREAM_FOOTER)
      } else {
        tcp.write(data as Buffer)
      }
    })
    ws.on('close', () => tcp.end())
    ws.on('error', () => tcp.destroy())
  })
  return {
    port: (wss.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate()
        wss.close(() => resolve())
      }),
  }
}

/** The attributes of an RFC 7395 `<open/>`, read by the project's own reader. */
function openAttributes(text: string): Record<string, string> {
  let attrs: Record<string, string> | undefined
  let failure: unknown
  const reader = new StreamParser({
    streamStart() {},
    element(element) {
      attrs ??= element.attrs as Record<string, string>
    },
    streamEnd() {},
    error(error) {
      failure = error
    },
  })
  reader.write(`<stream:stream xmlns:stream='${NS_STREAM}'>`)
  reader.write(text)
  if (failure !== undefined || attrs === undefined) throw failure ?? new Error('not an <open/>')
  return attrs
}
