import type { TestServer } from '@test/server'

/** The demo's arguments to log in as `eve` (password `pw`) on a test server, TLS unchecked. */
export function eveArgs(server: TestServer): string[] {
  return [
    '--service',
    server.service,
    '--jid',
    `eve@${server.domain}`,
    '--password',
    'pw',
    '--tls-insecure',
  ]
}
