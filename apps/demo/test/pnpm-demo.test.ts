import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { startTestServer } from '@test/server'
import { expect, test } from 'vitest'
import { eveArgs } from './eve-args.js'

const root = fileURLToPath(new URL('../../..', import.meta.url))

/** Runs `pnpm demo ...` from the repository root; stdout and stderr lines in arrival order. */
function pnpmDemo(args: string[]): Promise<{ code: number | null; lines: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn('pnpm', ['demo', ...args], { cwd: root, env: { ...process.env } })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, lines: output.split('\n').filter((l) => l) }))
  })
}

test('through `pnpm demo`, a failed run exits 1 and its own line is the last one printed', async () => {
  const server = await startTestServer({
    users: { eve: 'pw' },
    faults: { inject: { step: 'bind', data: '<!-- no comments in XMPP -->' } },
  })
  try {
    const { code, lines } = await pnpmDemo(eveArgs(server))
    expect(code).toBe(1)
    expect(lines.at(-1)).toMatch(/^StreamError restricted-xml \(code stream-error\): /)
    expect(lines.join('\n')).not.toContain('ELIFECYCLE')
  } finally {
    await server.close()
  }
}, 120_000)
