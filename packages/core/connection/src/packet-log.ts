import { definePlugin } from './plugin.js'

export interface PacketLogOptions {
  /** Log from the start. Default false: nothing is formatted while off. */
  enabled: boolean
  /** Where lines go. Default: standard error. */
  write: (line: string) => void
}

export interface PacketLogApi {
  /** The one switch: raw XML in both directions, secrets redacted. */
  enabled: boolean
}

/**
 * Elements whose text is a secret: SASL exchanges (RFC 6120 §6.4, XEP-0388), passwords
 * (XEP-0077, XEP-0078) and component handshakes (XEP-0114).
 */
const SECRET =
  'auth|response|challenge|success|initial-response|additional-data|password|digest|handshake'
const OPEN_SECRET = new RegExp(`<(?:[\\w.-]+:)?(?:${SECRET})(?:\\s[^>]*)?(?<!/)>`, 'g')
const REDACTED = '[redacted]'

/**
 * Replaces the text of secret elements. `inside` says whether the previous chunk ended
 * within a secret's text (a chunk boundary can fall anywhere); returns the new state.
 */
export function redact(data: string, inside: boolean): { text: string; inside: boolean } {
  let out = ''
  let pos = 0
  if (inside) {
    const end = data.indexOf('</')
    if (end < 0) return { text: REDACTED, inside: true }
    out = REDACTED
    pos = end
  }
  OPEN_SECRET.lastIndex = pos
  let open: RegExpExecArray | null = OPEN_SECRET.exec(data)
  while (open) {
    const textStart = open.index + open[0].length
    // Up to the closing tag: a CDATA section inside the secret is secret too.
    const textEnd = data.indexOf('</', textStart)
    out += data.slice(pos, textStart)
    if (textEnd < 0) return { text: out + (textStart < data.length ? REDACTED : ''), inside: true }
    if (textEnd > textStart) out += REDACTED
    pos = textEnd
    OPEN_SECRET.lastIndex = pos
    open = OPEN_SECRET.exec(data)
  }
  return { text: out + data.slice(pos), inside: false }
}

/**
 * The packet log: every byte read and written, as text, with secrets redacted. Switch it
 * with `packetLog.with({ enabled: true })` or `connection.plugins.packetLog.enabled = true`.
 */
export const packetLog = definePlugin({
  name: 'packetLog',
  options: {
    enabled: false,
    write: (line: string) => console.error(line),
  } as PacketLogOptions,
  setup(ctx, options): PacketLogApi {
    const api: PacketLogApi = { enabled: options.enabled }
    const inside = { in: false, out: false }
    // A chunk may end inside a tag: hold that tail back until the tag is complete, so that
    // a secret's opening tag is always seen whole.
    const carry = { in: '', out: '' }
    // Inbound chunks may split a multi-byte character: decode as a stream.
    let decoder: InstanceType<typeof TextDecoder> | undefined // created when first needed: most connections never log
    ctx.onRaw((direction, data) => {
      if (!api.enabled) return
      if (typeof data !== 'string' && !decoder) decoder = new TextDecoder()
      let text =
        carry[direction] +
        (typeof data === 'string'
          ? data
          : (decoder as InstanceType<typeof TextDecoder>).decode(data, { stream: true }))
      const open = text.lastIndexOf('<')
      if (open > text.lastIndexOf('>') && text.length - open < 4096) {
        carry[direction] = text.slice(open)
        text = text.slice(0, open)
        if (!text) return
      } else carry[direction] = ''
      const result = redact(text, inside[direction])
      inside[direction] = result.inside
      options.write(`${direction === 'in' ? 'IN ' : 'OUT'} ${result.text}`)
    })
    return api
  },
})
