// The page: log in over WebSocket with the same plugins as in Node, send messages, show the
// conversation and the connection state as it changes.
import { bind } from '@client/bind'
import { sasl } from '@client/sasl'
import { createConnection } from '@core/connection'
import { JID } from '@core/jid'
import { xml } from '@core/xml'
import { websocket } from '@transport/ws'

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id)
  if (!element) throw new Error(`#${id} is missing from the page`)
  return element as T
}

const field = (id: string) => byId<HTMLInputElement>(id)
const state = byId('state')
const mechanism = byId('mechanism')
const errorLine = byId('error')
const conversation = byId('conversation')
const connectButton = byId<HTMLButtonElement>('connect')
const disconnectButton = byId<HTMLButtonElement>('disconnect')
const sendButton = byId<HTMLButtonElement>('send')

// Fields may be prefilled from the address: ?service=...&jid=...&to=... (never the password).
const params = new URLSearchParams(location.search)
for (const name of ['service', 'jid', 'to']) {
  const value = params.get(name)
  if (value !== null) field(name).value = value
}

function say(who: string, text: string): void {
  const item = document.createElement('li')
  const from = document.createElement('strong')
  from.textContent = `${who}: `
  item.append(from, text)
  conversation.append(item)
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
    ],
  })
  conn.hooks.on('state', ({ state: now }) => {
    state.textContent = now
    const online = now === 'online'
    sendButton.disabled = !online
    disconnectButton.disabled = now === 'disconnected'
    connectButton.disabled = now !== 'disconnected'
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
  conn.connect().then(
    () => undefined,
    (error: unknown) => {
      errorLine.textContent = `${(error as { code?: string }).code ?? 'error'}: ${(error as Error).message}`
    },
  )
})

disconnectButton.addEventListener('click', () => {
  client?.disconnect().then(
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
  conn.send(xml('message', { to, type: 'chat' }, xml('body', {}, body))).then(
    () => {
      say('me', body)
      field('body').value = ''
    },
    (error: unknown) => {
      errorLine.textContent = `not sent: ${(error as Error).message}`
    },
  )
})
