import { NS_STANZA_ERRORS, type xml } from '@core/xml'
import { StanzaError, XMPPError } from '@core/errors'

type Element = ReturnType<typeof xml>

/** Stable codes of {@link BindError}. */
export type BindErrorCode =
  /** The bind result has no `<jid/>`, or one that is invalid or not a full JID. */
  | 'invalid-bind-result'
  /** The server bound a JID that is not of the account that logged in. */
  | 'foreign-jid'

/** The server's answer to a bind request is not usable. */
export class BindError extends XMPPError {
  declare readonly code: BindErrorCode

  constructor(
    message: string,
    init: {
      code?: BindErrorCode
      condition?: string
      element?: Element | undefined
      cause?: unknown
    } = {},
  ) {
    const { code = 'invalid-bind-result', ...rest } = init
    super(code, message, rest)
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
