/** RFC 6120 §4.9.3.19: see-other-host carries `host`, `host:port` or `[v6]:port`. */
export function parseRedirect(text: string): { host: string; port?: number } | undefined {
  const value = text.trim()
  if (!value) return undefined
  const v6 = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(value)
  if (v6) return withPort(v6[1] as string, v6[2])
  const plain = /^([^\s:/[\]]+)(?::(\d{1,5}))?$/.exec(value)
  if (plain) return withPort(plain[1] as string, plain[2])
  return undefined
}

function withPort(
  host: string,
  port: string | undefined,
): { host: string; port?: number } | undefined {
  if (port === undefined) return { host }
  const n = Number(port)
  if (n < 1 || n > 65535) return undefined
  return { host, port: n }
}
