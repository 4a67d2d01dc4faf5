/** The default reporter: one line on stderr, no element content. */
export function reportToStderr(error: Error): void {
  console.error(`xmpp: unhandled ${summarize(error)}`)
}

/** `Class condition (code c): first line of the message`, at most 300 characters. */
function summarize(error: Error): string {
  const { code, condition } = error as { code?: unknown; condition?: unknown }
  const parts = [error.name || error.constructor.name]
  if (typeof condition === 'string') parts.push(condition)
  if (typeof code === 'string') parts.push(`(code ${code})`)
  const message = (error.message.split('\n', 1)[0] ?? '').slice(0, 300)
  return `${parts.join(' ')}: ${message}`
}
