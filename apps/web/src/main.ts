// The page: log in over WebSocket with the same plugins as in Node, send messages, show the
// conversation and the connection state as it changes. Stream management and lifecycle make
// a dropped connection come back by itself, resumed: "Drop the connection" shows it.
import { bind } from '@client/bind'
import { sasl } from '@client/sasl'
import { createConnection } from '@core/connection'
import { JID } from '@core/jid'
import { xml } from '@core/xml'
import { lifecycle } from '@hooks/lifecycle'
import { websocket } from '@transport/ws'
import { sm } from '@xep/0198-sm'

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id)
  if (!element) throw new Error(`#${id} is missing from the page`)
  return element as T
}

const field = (id: string) => byId<HTMLInputElement>(id)
const state = byId('state')
const history = byId('history')
const mechanism = byId('mechanism')
const errorLine = byId('error')
const conversation = byId('conversation')
const connectButton = byId<HTMLButtonElement>('connect')
const disconnectButton = byId<HTMLButtonElement>('disconnect')
const sendButton = byId<HTMLButtonElement>('send')
const dropButton = byId<HTMLButtonElement>('drop')

// Fields may be prefilled from the address: ?service=...&jid=...&to=... (never the password).
const params = new URLSearchParams(location.search)
for (const name of ['service', 'jid', 'to']) {
  const value = params.get(name)
  if (value !== null) field(name).value = value
}

function say(who: string, text: string): HTMLLIElement {
  const item = document.createElement('li')
  const from = document.createElement('strong')
  from.textContent = `${who}: `
  item.append(from, text)
  conversation.append(item)
  return item
}

type Client = ReturnType<typeof connect>
let client: Client | undefined

function connect(service: string, account: JID, password: string) {
  const conn = createConnection({
    transport: websocket(),
    service,
    domain: account.domain,
    plugins: [
      sasl.with({ username: account.local, password }),
      bind.with(account.resource ? { resource: account.resource } : {}),
      // Each message is marked once the server acknowledged it: send() settles on the ack.
      sm.with({ settle: 'acked' }),
      lifecycle,
    ],
  })
  // Every state lifecycle reports, with what it carries: a `switch` narrows each payload.
  conn.hooks.on('lifecycle', (s) => {
    let shown: string = s.state
    switch (s.state) {
      case 'online':
        if (s.resumed) shown = 'online (resumed)'
        break
      case 'disconnected':
        if (s.resumable) shown = 'disconnected (resumable)'
        break
      case 'reconnecting':
        shown = `reconnecting (attempt ${s.attempt})`
        break
      case 'permanent-error':
        errorLine.textContent = `${s.error.code}: ${s.error.message}`
        break
    }
    state.textContent = s.state
    history.textContent = history.textContent ? `${history.textContent} → ${shown}` : shown
    const online = s.state === 'online'
    // Messages may be written while resuming: stream management holds them until then.
    sendButton.disabled = !(online || s.state === 'resuming' || s.state === 'reconnecting')
    dropButton.disabled = !online
    const over = s.state === 'stopped' || s.state === 'permanent-error'
    disconnectButton.disabled = over
    connectButton.disabled = !over
  })
  conn.hooks.on('online', () => {
    mechanism.textContent = `(${conn.plugins.sasl.mechanism} as ${conn.jid?.toString()})`
  })
  conn.hooks.on('disconnected', ({ error }) => {
    if (error) errorLine.textContent = `${error.code}: ${error.message}`
  })
  conn.hooks.on('stanza', ({ element, name }) => {
    const body = name === 'message' ? element.getChildText('body') : null
    if (body !== null) say(element.attrs.from ?? '?', body)
  })
  return conn
}

byId<HTMLFormElement>('login').addEventListener('submit', (event) => {
  event.preventDefault()
  errorLine.textContent = ''
  let account: JID
  try {
    account = JID.parse(field('jid').value.trim())
  } catch (error) {
    errorLine.textContent = `JID: ${(error as Error).message}`
    return
  }
  const conn = connect(field('service').value.trim(), account, field('password').value)
  client = conn
  history.textContent = ''
  conn.plugins.lifecycle.start().then(
    () => undefined,
    (error: unknown) => {
      errorLine.textContent = `${(error as { code?: string }).code ?? 'error'}: ${(error as Error).message}`
    },
  )
})

dropButton.addEventListener('click', () => {
  client?.transport?.destroy()
})

disconnectButton.addEventListener('click', () => {
  client?.plugins.lifecycle.stop().then(
    () => undefined,
    (error: unknown) => {
      errorLine.textContent = String(error)
    },
  )
})

byId<HTMLFormElement>('compose').addEventListener('submit', (event) => {
  event.preventDefault()
  const conn = client
  const to = field('to').value.trim()
  const body = field('body').value
  if (!conn || to === '' || body === '') return
  // Shown at once; with stream management, send() settles when the server acknowledged it.
  const item = say('me', body)
  item.className = 'pending'
  field('body').value = ''
  conn.send(xml('message', { to, type: 'chat' }, xml('body', {}, body))).then(
    () => {
      item.className = 'acked'
    },
    (error: unknown) => {
      item.className = 'failed'
      errorLine.textContent = `not delivered: ${(error as Error).message}`
    },
  )
})
