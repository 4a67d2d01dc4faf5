import { definePlugin, type PluginContext } from '@core/connection'

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
    return new PacketLog(ctx, options)
  },
})

/**
 * The packet log of one connection. A class rather than `{ enabled }` and a closure: most
 * connections never log, so until the log is first switched on it keeps only the context
 * and the options, and it does not tap the connection's raw data at all (the tap, its
 * state and the connection's list of taps cost some 400 bytes per idle connection). The
 * first time `enabled` turns on, from the options or later at run time, it taps the
 * connection (ctx.onRaw, unlike the middleware, may be called after connect()); the tap
 * stays (a tap cannot be removed) and does nothing while the log is off.
 */
class PacketLog implements PacketLogApi {
  readonly #ctx: PluginContext
  readonly #options: PacketLogOptions
  #enabled = false
  /** Whether the last chunk of each direction ended within a secret's text. Set with the tap. */
  #inside: { in: boolean; out: boolean } | undefined = undefined
  /**
   * A chunk may end inside a tag: that tail is held back until the tag is complete, so that
   * a secret's opening tag is always seen whole.
   */
  #carry: { in: string; out: string } | undefined = undefined
  /** Inbound chunks may split a multi-byte character: decoded as a stream, when bytes come. */
  #decoder: InstanceType<typeof TextDecoder> | undefined = undefined

  constructor(ctx: PluginContext, options: PacketLogOptions) {
    this.#ctx = ctx
    this.#options = options
    this.enabled = options.enabled
  }

  get enabled(): boolean {
    return this.#enabled
  }

  set enabled(value: boolean) {
    this.#enabled = value
    if (value && !this.#inside) {
      this.#inside = { in: false, out: false }
      this.#carry = { in: '', out: '' }
      this.#ctx.onRaw((direction, data) => this.#log(direction, data))
    }
  }

  #log(direction: 'in' | 'out', data: string | Uint8Array): void {
    if (!this.#enabled) return
    const inside = this.#inside as { in: boolean; out: boolean }
    const carry = this.#carry as { in: string; out: string }
    if (typeof data !== 'string') this.#decoder ??= new TextDecoder()
    let text =
      carry[direction] +
      (typeof data === 'string'
        ? data
        : (this.#decoder as InstanceType<typeof TextDecoder>).decode(data, { stream: true }))
    const open = text.lastIndexOf('<')
    if (open > text.lastIndexOf('>') && text.length - open < 4096) {
      carry[direction] = text.slice(open)
      text = text.slice(0, open)
      if (!text) return
    } else carry[direction] = ''
    const result = redact(text, inside[direction])
    inside[direction] = result.inside
    this.#options.write(`${direction === 'in' ? 'IN ' : 'OUT'} ${result.text}`)
  }
}
