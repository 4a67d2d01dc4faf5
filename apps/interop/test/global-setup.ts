import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { TestProject } from 'vitest/node'
import type { ProsodyState } from './prosody.js'

// One Prosody for the whole suite, started by scripts/prosody.mjs before the first test file
// and stopped after the last. With CI set, a Prosody that is missing or does not start fails
// the run; elsewhere the suite is skipped with a warning.

const SCRIPT = fileURLToPath(new URL('../../../scripts/prosody.mjs', import.meta.url))
/** Exit code of scripts/prosody.mjs when Prosody is not installed. */
const NOT_INSTALLED = 2

function runScript(args: string[], timeout = 90_000) {
  return spawnSync(process.execPath, [SCRIPT, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout,
  })
}

function isCI(): boolean {
  const ci = process.env.CI
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false'
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export default function setup(project: TestProject): (() => void) | undefined {
  const owner = `vitest:${process.pid}`
  let res = runScript(['start', '--json', `--owner=${owner}`])
  if (res.status === NOT_INSTALLED && process.getuid?.() === 0) {
    // As root on a fresh machine, `pnpm test` installs Prosody itself (Debian's package).
    console.info('interop: Prosody is not installed; installing it (apt-get install prosody)')
    const installed = runScript(['install'], 600_000)
    process.stderr.write(installed.stderr)
    if (installed.status === 0) res = runScript(['start', '--json', `--owner=${owner}`])
  }
  if (res.status !== 0) {
    const why = (res.stderr || res.error?.message || `exit ${res.status}`).trim()
    const what = res.status === NOT_INSTALLED ? 'Prosody is not installed' : 'Prosody did not start'
    if (isCI()) {
      throw new Error(
        `interop: ${what}, and CI is set: the interop suite must run against a real Prosody.\n` +
          `Install it (\`node scripts/prosody.mjs install\` as root; .ci/run does it through ` +
          `APT_PACKAGES) and see scripts/prosody.mjs.\n${why}`,
      )
    }
    const bar = '!'.repeat(78)
    console.warn(
      `\n${bar}\n! interop: ${what}: EVERY INTEROP TEST IS SKIPPED.\n! ${why.split('\n').join('\n! ')}\n` +
        `! Fix: \`sudo node scripts/prosody.mjs install\`, then run again. (With CI set this fails.)\n${bar}\n`,
    )
    project.provide('prosody', null)
    return undefined
  }
  process.stderr.write(res.stderr)
  const lines = res.stdout.trim().split('\n')
  const state = JSON.parse(lines[lines.length - 1] ?? '') as ProsodyState & {
    reused: boolean
    owner?: string
  }
  project.provide('prosody', state)

  // Stop it at the end when this run started it, or when it was left behind by a run that
  // died before its teardown. A server someone started by hand keeps running.
  const leftBy = /^vitest:(\d+)$/.exec(state.owner ?? '')
  const leftBehind = state.reused && leftBy !== null && !isAlive(Number(leftBy[1]))
  if ((state.reused && !leftBehind) || process.env.PROSODY_KEEP) {
    console.info(`interop: leaving Prosody (pid ${state.pid}) running`)
    return undefined
  }
  return () => {
    const stopped = runScript(['stop'])
    if (stopped.status !== 0) {
      throw new Error(`interop: scripts/prosody.mjs stop failed:\n${stopped.stderr}`)
    }
  }
}
