import { NS_STANZA_ERRORS, StanzaError, XMPPError, type xml } from '@core/connection'

type Element = ReturnType<typeof xml>

/** The server's answer to a bind request is not usable: no JID, an invalid or bare one. */
export class BindError extends XMPPError {
  constructor(
    message: string,
    init: { condition?: string; element?: Element | undefined; cause?: unknown } = {},
  ) {
    super('invalid-bind-result', message, init)
  }
}

/** RFC 6120 §8.3: the StanzaError of an `<iq type='error'/>`. */
export function stanzaErrorOf(element: Element, what: string): StanzaError {
  const error = element.getChild('error')
  let condition = 'undefined-condition'
  let text: string | undefined
  for (const child of error?.getChildElements() ?? []) {
    if (child.getNS() !== NS_STANZA_ERRORS) continue
    if (child.name === 'text') text = child.getText()
    else condition = child.name
  }
  const type = typeof error?.attrs.type === 'string' ? (error.attrs.type as string) : 'cancel'
  return new StanzaError(condition, type, {
    text,
    element,
    message: `${what} failed: ${condition}${text ? ` (${text})` : ''}`,
  })
}
