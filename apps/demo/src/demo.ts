import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { createClient } from '@client/preset'
import type { Message } from '@core/connection'
import { TimeoutError } from '@core/errors'
import { xml } from '@core/xml'
import { startTestServer, type TestServer } from '@test/server'
import { echoComponent } from './echo-component.js'
import { type SmApi, sm } from '@xep/0198-sm'
import { type LifecycleApi, lifecycle } from '@hooks/lifecycle'

export interface DemoSettings {
  service: string | undefined
  jid: string | undefined
  password: string | undefined
  /** A PEM file of CA certificates to trust in addition to the default roots. */
  caFile: string | undefined
  tlsInsecure: boolean
  allowPlaintext: boolean
  debug: boolean
  /** Also run an echo component (XEP-0114), and exchange a message with it. */
  component: boolean
  /** The server's component port, `xmpp://HOST:PORT` (a real server). */
  componentService: string | undefined
  /** The component's domain on a real server (default `echo.<the JID's domain>`). */
  componentDomain: string | undefined
  /** Its secret (env XMPP_COMPONENT_SECRET only). */
  componentSecret: string | undefined
  /** Stream management with resumption (XEP-0198). */
  sm: boolean
  /** With `sm`: destroy the socket once mid-run, to show the resumption. */
  drop: boolean
}

const USAGE = `usage: pnpm demo [--service xmpp://HOST:PORT] [--jid USER@DOMAIN --password PW] [--ca FILE] [--tls-insecure] [--allow-plaintext] [--debug] [--sm [--drop]] [--component [--component-service xmpp://HOST:PORT] [--component-domain NAME]]

With no --jid, logs in to an embedded test server. Otherwise:
  --jid USER@DOMAIN   the account (env XMPP_JID); without --service, SRV of its domain
  --password PW       its password. Prefer the environment: XMPP_PASSWORD=PW pnpm demo ...
                      (on the command line it is visible to other users of the machine
                      in ps and /proc while the demo runs)
  --service URL       xmpp://HOST:PORT (STARTTLS) or xmpps://HOST:PORT (direct TLS)
                      (env XMPP_SERVICE)
  --ca FILE           also trust the CA certificate(s) in this PEM file
  --tls-insecure      accept a certificate that does not verify (PLAIN is then refused)
  --allow-plaintext   permit a stream without TLS and PLAIN without TLS
  --debug             print the packet log (passwords and SASL payloads redacted)
  --component         also run an echo component (XEP-0114) and exchange a message with it;
                      on the embedded server by default. On a real server:
  --component-service xmpp://HOST:PORT of its component port (env XMPP_COMPONENT_SERVICE),
                      the secret in XMPP_COMPONENT_SECRET (never on the command line)
  --component-domain  NAME, default echo.<the JID's domain> (env XMPP_COMPONENT_DOMAIN)
  --sm                stream management (XEP-0198): resume after a drop (3 tries at
                      most), and wait until the server acknowledged every stanza sent
  --drop              with --sm: cut the connection once mid-run; what is sent during
                      the outage arrives once, after the resumption`

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      service: { type: 'string' },
      jid: { type: 'string' },
      password: { type: 'string' },
      ca: { type: 'string' },
      'tls-insecure': { type: 'boolean', default: false },
      'allow-plaintext': { type: 'boolean', default: false },
      debug: { type: 'boolean', default: false },
      component: { type: 'boolean', default: false },
      'component-service': { type: 'string' },
      'component-domain': { type: 'string' },
      sm: { type: 'boolean', default: false },
      drop: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  })
}

/** Command line first, then XMPP_SERVICE / XMPP_JID / XMPP_PASSWORD. */
export function readSettings(argv: string[], env: NodeJS.ProcessEnv): DemoSettings {
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(argv)
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`)
  }
  const { values } = parsed
  if (values.help) throw new UsageError(USAGE)
  if (values.drop && !values.sm) throw new UsageError(`--drop needs --sm\n${USAGE}`)
  return {
    service: values.service ?? env.XMPP_SERVICE,
    jid: values.jid ?? env.XMPP_JID,
    password: values.password ?? env.XMPP_PASSWORD,
    caFile: values.ca,
    tlsInsecure: values['tls-insecure'] ?? false,
    allowPlaintext: values['allow-plaintext'] ?? false,
    debug: values.debug ?? false,
    component: values.component ?? false,
    componentService: values['component-service'] ?? env.XMPP_COMPONENT_SERVICE,
    componentDomain: values['component-domain'] ?? env.XMPP_COMPONENT_DOMAIN,
    componentSecret: env.XMPP_COMPONENT_SECRET,
    sm: values.sm ?? false,
    drop: values.drop ?? false,
  }
}

class UsageError extends Error {}

function readCa(file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (error) {
    throw new UsageError(
      `--ca ${file}: ${error instanceof Error ? error.message : String(error)}\n${USAGE}`,
    )
  }
}

/** Every step has a deadline: the demo never hangs. */
const STEP_TIMEOUT = 10_000
/** With --sm, how many times a dropped connection is resumed. */
const MAX_RESUMES = 3

/**
 * Runs the demo and returns the exit code: 0 only when every step succeeded. Prints one line
 * per step; on failure the last line names the error's class, XMPP condition and code.
 */
export async function runDemo(
  argv: string[],
  env: NodeJS.ProcessEnv,
  print: (line: string) => void,
): Promise<number> {
  let server: TestServer | undefined
  let client: ReturnType<typeof createClient> | undefined
  let echo: ReturnType<typeof echoComponent> | undefined
  /** --sm: the stanzas reported not delivered. */
  const notDelivered: string[] = []
  const step = async <T>(
    name: string,
    run: () => Promise<T>,
    describe?: (value: T) => string,
    endsSession = false,
  ) => {
    const started = performance.now()
    let timer: ReturnType<typeof setTimeout> | undefined
    let onEnd: (() => void) | undefined
    // Every step also ends at once when the session ends (a stream error, a drop), with
    // that cause: the client's signal aborts with it.
    const signal = endsSession ? undefined : client?.signal
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TimeoutError(`${name}: no outcome within ${STEP_TIMEOUT} ms`)),
        STEP_TIMEOUT,
      )
      if (signal) {
        onEnd = () => reject(signal.reason)
        if (signal.aborted) onEnd()
        else signal.addEventListener('abort', onEnd, { once: true })
      }
    })
    try {
      const value = await Promise.race([run(), deadline])
      const ms = (performance.now() - started).toFixed(1)
      print(`ok   ${name} (${ms} ms)${describe ? `: ${describe(value)}` : ''}`)
      return value
    } catch (error) {
      print(`FAIL ${name}`)
      throw error
    } finally {
      clearTimeout(timer)
      if (onEnd) signal?.removeEventListener('abort', onEnd)
    }
  }

  try {
    const settings = readSettings(argv, env)
    let { service, jid, password } = settings
    let ca: string | undefined
    let { componentService, componentDomain, componentSecret } = settings
    if (!service && !jid) {
      const user = 'demo'
      const secret = crypto.randomUUID()
      componentSecret = crypto.randomUUID()
      componentDomain = 'echo.localhost'
      server = await step(
        'start the embedded test server',
        () =>
          startTestServer({
            users: { [user]: secret },
            ...(settings.component
              ? { components: { [componentDomain as string]: componentSecret as string } }
              : {}),
          }),
        (s) => s.service,
      )
      service = server.service
      jid = `${user}@${server.domain}`
      password = secret
      ca = server.certs.ca
      componentService = server.componentService
    }
    if (!jid) throw new UsageError(`--jid (or XMPP_JID) is required with --service\n${USAGE}`)
    if (password === undefined) {
      throw new UsageError(`--password (or XMPP_PASSWORD) is required with --jid\n${USAGE}`)
    }
    if (settings.component && (!componentService || !componentSecret)) {
      throw new UsageError(
        `--component on a real server needs --component-service (or XMPP_COMPONENT_SERVICE) and XMPP_COMPONENT_SECRET\n${USAGE}`,
      )
    }
    const extraCa = settings.caFile === undefined ? undefined : readCa(settings.caFile)
    const c = createClient({
      ...(service ? { service } : {}),
      jid,
      password,
      tls: {
        insecure: settings.tlsInsecure,
        ...(ca ? { ca } : {}),
        ...(extraCa ? { extraCa } : {}),
      },
      allowPlaintext: settings.allowPlaintext,
      debug: settings.debug ? (line: string) => print(`  | ${line}`) : false,
      // Stream management before lifecycle: lifecycle's next attempt is SM's resumption.
      // Without --sm the demo does not reconnect (a failure ends the run, naming its cause);
      // the post-connect hook fetches the roster either way.
      plugins: [
        ...(settings.sm ? [sm] : []),
        lifecycle.with({ reconnect: settings.sm, maxAttempts: MAX_RESUMES }),
      ],
    })
    client = c
    c.hooks.on('error', ({ error }) => print(`warn ${describeError(error)}`))
    // @hooks/lifecycle: a fresh session fetches the roster (post-connect); a resumed one
    // (--sm) already has it and only says so (post-resume).
    c.hooks.on('post-connect', async () => {
      const roster = await c.plugins.iq.request(
        xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })),
      )
      const items = roster.getChild('query', 'jabber:iq:roster')?.getChildren('item') ?? []
      print(`ok   post-connect: roster fetched, ${items.length} contact(s)`)
    })
    c.hooks.on('post-resume', ({ downtime }) => {
      const again = smApi ? `, ${smApi.resent} stanza(s) sent again so far` : ''
      print(`ok   post-resume: resumed after ${downtime.toFixed(0)} ms${again}`)
    })
    // --sm: a dropped, resumable session is resumed by lifecycle on the same connection (a
    // few times at most); stanzas reported not delivered are listed if the run fails.
    const smApi = settings.sm ? (c.plugins as { sm?: SmApi }).sm : undefined
    let closing = false
    if (smApi) {
      c.hooks.on('sm-failed', ({ element }) => {
        notDelivered.push(`<${element.name}${element.attrs.id ? ` id='${element.attrs.id}'` : ''}>`)
      })
      c.hooks.on('lifecycle', (s) => {
        if (closing) return
        if (s.state === 'disconnected' && s.resumable) {
          print(`warn the connection dropped (${describeError(s.cause)}); resuming`)
        }
      })
    }
    await step(
      'log in',
      () => c.connect(),
      () => `${c.jid?.toString()} via ${c.plugins.sasl.mechanism}`,
    )
    if (smApi) {
      await step(
        'stream management (XEP-0198)',
        async () => smApi,
        (api) =>
          api.enabled ? `enabled, ${api.resumable ? 'resumable' : 'not resumable'}` : 'not offered',
      )
      if (!smApi.enabled) throw new Error('the server did not enable stream management')
    }
    await step(
      'ping the server (XEP-0199)',
      () => c.plugins.ping.ping(),
      (ms) => `${ms.toFixed(1)} ms round trip`,
    )
    if (settings.drop) {
      await step(
        'cut the connection (--drop)',
        async () => {
          const gone = c.hooks.next('disconnected')
          c.transport?.destroy()
          await gone
        },
        () => 'the socket was destroyed; sending during the outage',
      )
    }
    const token = crypto.randomUUID()
    const received = new Promise<Message>((resolve) => {
      c.plugins.router.message({ child: 'body' }, (msg) => {
        if (msg.getChildText('body') === token) resolve(msg)
      })
    })
    await step(
      'send initial presence and a message to our own JID',
      async () => {
        await c.send(xml('presence'))
        const to = c.jid?.bare().toString() ?? jid
        await c.send(xml('message', { to, type: 'chat' }, xml('body', null, token)))
        return to
      },
      (to) => `to ${to}`,
    )
    await step(
      'receive it',
      () => received,
      (msg) => `from ${String(msg.attrs.from)}`,
    )
    if (settings.component) {
      const domain = componentDomain ?? `echo.${c.jid?.domain ?? ''}`
      const e = echoComponent({
        service: componentService as string,
        domain,
        secret: componentSecret as string,
        debug: settings.debug ? (line: string) => print(`  c| ${line}`) : undefined,
      })
      echo = e
      e.hooks.on('error', ({ error }) => print(`warn component: ${describeError(error)}`))
      await step(
        'connect the echo component (XEP-0114)',
        () => e.connect(),
        () => domain,
      )
      const question = crypto.randomUUID()
      const echoed = new Promise<Message>((resolve) => {
        c.plugins.router.message({ child: 'body' }, (msg) => {
          if (msg.getChildText('body') === `echo: ${question}`) resolve(msg)
        })
      })
      await step(
        'send a message to the component and receive its echo',
        async () => {
          await c.send(xml('message', { to: domain, type: 'chat' }, xml('body', null, question)))
          return await Promise.race([echoed, rejectOnEnd(e.signal)])
        },
        (msg) => `from ${String(msg.attrs.from)}`,
      )
      await step('close the component', () => e.disconnect(), undefined, true)
    }
    if (smApi) {
      await step(
        'wait until the server acknowledged every stanza',
        async () => {
          await smApi.requestAck()
          await smApi.allAcked()
        },
        () => `${smApi.outbound} acknowledged`,
      )
    }
    closing = true
    const sent = smApi?.outbound ?? 0
    const resent = smApi?.resent ?? 0
    await step('close the stream', () => c.disconnect(), undefined, true)
    print(
      smApi
        ? `done: every step succeeded; ${sent} stanzas sent, ${sent} acked, ${resent} resent`
        : 'done: every step succeeded',
    )
    return 0
  } catch (error) {
    if (error instanceof UsageError) {
      print(error.message)
      return 2
    }
    print(describeError(error))
    if (notDelivered.length > 0) print(`not delivered: ${notDelivered.join(' ')}`)
    return 1
  } finally {
    if (echo && echo.state !== 'disconnected') await echo.disconnect()
    // stop() rather than disconnect(): it also cancels a reconnection lifecycle has planned.
    const life = (client?.plugins as { lifecycle?: LifecycleApi } | undefined)?.lifecycle
    if (life) await life.stop()
    else if (client && client.state !== 'disconnected') await client.disconnect()
    await server?.close()
  }
}

/** Rejects with the cause once `signal` aborts (the component's session ended). */
function rejectOnEnd(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason)
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true })
  })
}

/** `<Class> <condition> (code <code>): <message>` */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return `Error: ${String(error)}`
  const { code, condition } = error as { code?: unknown; condition?: unknown }
  const parts = [error.constructor.name]
  if (typeof condition === 'string') parts.push(condition)
  if (typeof code === 'string') parts.push(`(code ${code})`)
  return `${parts.join(' ')}: ${error.message}`
}
