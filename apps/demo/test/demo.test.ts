import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestServer } from '@test/server'
import { describe, expect, test } from 'vitest'
import { describeError, runDemo } from '../src/demo.js'
import { eveArgs } from './eve-args.js'

async function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const lines: string[] = []
  const code = await runDemo(argv, env, (line) => lines.push(line))
  return { code, lines }
}

/** The first line printed (a usage error prints its message, then the usage). */
const firstLine = (r: { lines: string[] }) => r.lines.join('\n').split('\n')[0]

describe('the demo', () => {
  test('with no server configured: every step against the embedded server, exit 0', async () => {
    const { code, lines } = await run([])
    expect(code).toBe(0)
    expect(lines.map((l) => l.split(' (')[0])).toEqual([
      'ok   start the embedded test server',
      'ok   post-connect: roster fetched, 0 contact(s)',
      'ok   log in',
      'ok   ping the server',
      'ok   send initial presence and a message to our own JID',
      'ok   receive it',
      'ok   close the stream',
      'done: every step succeeded',
    ])
  })

  test('--component: an echo component (XEP-0114) on the embedded server answers the client', async () => {
    const { code, lines } = await run(['--component'])
    expect(code).toBe(0)
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^ok {3}connect the echo component \(XEP-0114\) \(.* ms\): echo\.localhost$/,
      ),
    )
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^ok {3}send a message to the component and receive its echo \(.* ms\): from echo\.localhost$/,
      ),
    )
    expect(lines.at(-1)).toBe('done: every step succeeded')
  })

  test('--component against a real server without its service or secret: a usage error', async () => {
    const server = await startTestServer({ users: { eve: 'pw' } })
    try {
      const { code, lines } = await run(
        [
          '--service',
          server.service,
          '--jid',
          `eve@${server.domain}`,
          '--tls-insecure',
          '--component',
        ],
        { XMPP_PASSWORD: 'pw' },
      )
      expect(code).toBe(2)
      expect(firstLine({ lines })).toBe(
        '--component on a real server needs --component-service (or XMPP_COMPONENT_SERVICE) and XMPP_COMPONENT_SECRET',
      )
    } finally {
      await server.close()
    }
  })

  test('--sm: stream management enabled, every stanza acknowledged before the close', async () => {
    const { code, lines } = await run(['--sm'])
    expect(code).toBe(0)
    expect(lines.map((l) => l.split(' (')[0])).toEqual([
      'ok   start the embedded test server',
      'ok   post-connect: roster fetched, 0 contact(s)',
      'ok   log in',
      'ok   stream management',
      'ok   ping the server',
      'ok   send initial presence and a message to our own JID',
      'ok   receive it',
      'ok   wait until the server acknowledged every stanza',
      'ok   close the stream',
      // The roster request, the presence, the message and the ping.
      'done: every step succeeded; 4 stanzas sent, 4 acked, 0 resent',
    ])
  })

  test('--sm --drop: the connection cut mid-run is resumed; the message sent meanwhile arrives', async () => {
    const { code, lines } = await run(['--sm', '--drop'])
    expect(code, lines.join('\n')).toBe(0)
    expect(lines.some((l) => l.startsWith('ok   cut the connection'))).toBe(true)
    expect(lines.some((l) => l.startsWith('warn the connection dropped'))).toBe(true)
    // A resumed session: post-resume, and post-connect (the roster fetch) only the first time.
    expect(lines.filter((l) => l.startsWith('ok   post-resume: resumed after'))).toHaveLength(1)
    expect(lines.filter((l) => l.startsWith('ok   post-connect'))).toHaveLength(1)
    expect(lines.filter((l) => l.startsWith('ok   receive it'))).toHaveLength(1)
    expect(lines.at(-1)).toMatch(
      /^done: every step succeeded; 4 stanzas sent, 4 acked, \d+ resent$/,
    )
  })

  test('--drop without --sm is a usage error', async () => {
    const { code, lines } = await run(['--drop'])
    expect(code).toBe(2)
    expect(firstLine({ lines })).toBe('--drop needs --sm')
  })

  test('against a given server, from the environment, with the packet log', async () => {
    const server = await startTestServer({ users: { eve: 'pw' } })
    try {
      const { code, lines } = await run(['--tls-insecure', '--debug'], {
        XMPP_SERVICE: server.service,
        XMPP_JID: `eve@${server.domain}`,
        XMPP_PASSWORD: 'pw',
      })
      expect(code).toBe(0)
      expect(lines.some((l) => l.startsWith('  | OUT <starttls'))).toBe(true)
    } finally {
      await server.close()
    }
  })

  test('no secret in the packet log, though the password crossed the wire (PLAIN over TLS)', async () => {
    const password = 'correct horse battery staple'
    const server = await startTestServer({ users: { eve: password }, mechanisms: ['PLAIN'] })
    const dir = await mkdtemp(join(tmpdir(), 'demo-ca-'))
    try {
      const ca = join(dir, 'ca.pem')
      await writeFile(ca, server.certs.ca)
      const { code, lines } = await run(['--ca', ca, '--debug'], {
        XMPP_SERVICE: server.service,
        XMPP_JID: `eve@${server.domain}`,
        XMPP_PASSWORD: password,
      })
      expect(code).toBe(0)
      // The password was sent: PLAIN carries it as is, inside TLS.
      expect(server.log.filter((e) => e.type === 'auth').map((e) => e.mechanism)).toEqual(['PLAIN'])
      const log = lines.join('\n')
      expect(log).toContain('  | OUT <auth')
      expect(log).toContain('[redacted]')
      for (const secret of [
        password,
        Buffer.from(password).toString('base64'),
        Buffer.from(`\0eve\0${password}`).toString('base64'),
      ]) {
        expect(log).not.toContain(secret)
      }
    } finally {
      await server.close()
      await rm(dir, { recursive: true, force: true })
    }
  })

  test('without --tls-insecure an untrusted certificate fails the login', async () => {
    const server = await startTestServer({ users: { eve: 'pw' } })
    try {
      const { code, lines } = await run([
        '--service',
        server.service,
        '--jid',
        `eve@${server.domain}`,
        '--password',
        'pw',
      ])
      expect(code).toBe(1)
      expect(lines.at(-2)).toBe('FAIL log in')
      expect(lines.at(-1)).toMatch(/^TLSError \(code certificate\): /)
    } finally {
      await server.close()
    }
  })

  test('a failing step exits non-zero and the last line names class, condition and code', async () => {
    const server = await startTestServer({
      users: { eve: 'pw' },
      faults: { inject: { step: 'bind', data: '<!-- no comments in XMPP -->' } },
    })
    try {
      const { code, lines } = await run(eveArgs(server))
      expect(code).toBe(1)
      expect(lines.at(-1)).toMatch(/^StreamError restricted-xml \(code stream-error\): /)
    } finally {
      await server.close()
    }
  })

  test('a wrong password: SASLError not-authorized', async () => {
    const server = await startTestServer({ users: { eve: 'pw' } })
    try {
      const { code, lines } = await run([
        '--service',
        server.service,
        '--jid',
        `eve@${server.domain}`,
        '--password',
        'nope',
        '--tls-insecure',
      ])
      expect(code).toBe(1)
      expect(lines.at(-1)).toMatch(/^SASLError not-authorized \(code sasl-error\)/)
    } finally {
      await server.close()
    }
  })

  // Servers that misbehave after login: the demo's last line names the cause at once, not a
  // step timeout of its own (10 s).
  test.each([
    {
      fault: 'a stream error from the server (conflict)',
      faults: {
        inject: {
          step: 'presence' as const,
          data: "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
        },
      },
      last: /^StreamError conflict \(code stream-error\): /,
    },
    {
      fault: 'a stanza the reader refuses',
      faults: { inject: { step: 'presence' as const, data: '<message><body>x</message>' } },
      last: /^StreamError not-well-formed \(code stream-error\): /,
    },
    {
      fault: 'the socket closed mid-stanza',
      faults: {
        inject: { step: 'presence' as const, data: '<message><body>half' },
        closeAtStep: 'presence' as const,
      },
      last: /^ConnectionError \(code disconnected\): /,
    },
  ])('after login, $fault: the last line names it within a second', async ({ faults, last }) => {
    const server = await startTestServer({ users: { eve: 'pw' }, faults })
    try {
      const started = performance.now()
      const { code, lines } = await run(eveArgs(server))
      const took = performance.now() - started
      expect(code).toBe(1)
      expect(lines.at(-1)).toMatch(last)
      expect(lines.join('\n')).not.toContain('no outcome within')
      // The login takes some ms; a step timeout would take 10 s.
      expect(took).toBeLessThan(5000)
    } finally {
      await server.close()
    }
  })

  test('usage errors exit 2 and say what is missing', async () => {
    const service = await run(['--service', 'xmpp://127.0.0.1:1'])
    expect(service.code).toBe(2)
    expect(firstLine(service)).toBe('--jid (or XMPP_JID) is required with --service')
    const jid = await run(['--jid', 'a@localhost'])
    expect(jid.code).toBe(2)
    expect(firstLine(jid)).toBe('--password (or XMPP_PASSWORD) is required with --jid')
    expect((await run(['--bogus'])).code).toBe(2)
    const ca = await run(['--jid', 'a@localhost', '--password', 'x', '--ca', '/nonexistent.pem'])
    expect(ca.code).toBe(2)
    expect(firstLine(ca)).toMatch(/^--ca \/nonexistent.pem: /)
  })

  test('--help warns that a password on the command line shows in ps, and names XMPP_PASSWORD', async () => {
    const { code, lines } = await run(['--help'])
    expect(code).toBe(2)
    const help = lines.join('\n')
    expect(help).toMatch(/visible to other users .* in ps/s)
    expect(help).toContain('XMPP_PASSWORD=PW pnpm demo')
  })

  test('describeError for errors without a condition', () => {
    expect(describeError(new TypeError('x'))).toBe('TypeError: x')
  })
})
