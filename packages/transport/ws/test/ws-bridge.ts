// A WebSocket front for @test/server, the way a server's WebSocket module sits in front of
// its XML streams: RFC 7395 messages on one side, an RFC 6120 stream over TCP on the other.
// It lets the whole login (SASL SCRAM, bind) run over the WebSocket transport against the
// test server's real logic.
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { NS_STREAM, STREAM_FOOTER, serialize, StreamParser, streamHeader } from '@core/xml'
import type { TestServer } from '@test/server'
import { type Element, parse } from 'ltx'
import { WebSocketServer } from 'ws'
import { FRAMING } from './ws-server.js'

export interface Bridge {
  readonly url: string
  close(): Promise<void>
}

export async function startBridge(server: TestServer): Promise<Bridge> {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    handleProtocols: (protocols) => (protocols.has('xmpp') ? 'xmpp' : false),
  })
  await new Promise<void>((resolve) => wss.once('listening', resolve))
  wss.on('connection', (ws) => {
    const tcp = connect({ host: server.host, port: server.port })
    const toClient = (data: string) => {
      if (ws.readyState === ws.OPEN) ws.send(data)
    }
    let parser: StreamParser | undefined
    // A new reader of the server's stream for every stream the client opens (a restart).
    const newParser = () => {
      parser?.stop()
      parser = new StreamParser({
        streamStart(attrs) {
          let open = `<open xmlns='${FRAMING}'`
          for (const [k, v] of Object.entries(attrs)) {
            if (k !== 'xmlns' && !k.startsWith('xmlns:')) open += ` ${k}='${v}'`
          }
          toClient(`${open}/>`)
        },
        element(el: Element) {
          // Each message declares its namespaces (RFC 7395 §3.3.3).
          if (el.name.startsWith('stream:')) el.attrs['xmlns:stream'] = NS_STREAM
          else el.attrs.xmlns ??= 'jabber:client'
          toClient(serialize(el))
        },
        streamEnd() {
          toClient(`<close xmlns='${FRAMING}'/>`)
          ws.close(1000)
        },
        error() {
          ws.close(1011)
        },
      })
    }
    tcp.on('data', (chunk) => parser?.write(chunk))
    tcp.on('close', () => ws.close(1000))
    tcp.on('error', () => ws.close(1011))
    ws.on('message', (data) => {
      const text = data.toString()
      if (text.startsWith('<open')) {
        const attrs = parse(text).attrs as Record<string, string>
        newParser()
        tcp.write(
          streamHeader({
            ...attrs,
            xmlns: 'jabber:client',
            'xmlns:stream': NS_STREAM,
          }),
        )
      } else if (text.startsWith('<close')) {
        tcp.end(STREAM_FOOTER)
      } else {
        tcp.write(text)
      }
    })
    ws.on('close', () => tcp.destroy())
  })
  const port = (wss.address() as AddressInfo).port
  return {
    url: `ws://127.0.0.1:${port}/xmpp-websocket`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate()
        wss.close(() => resolve())
      }),
  }
}
