// Runs the tools the packaging tests drive (pnpm, npm, tsc, node, tar) and fails with
// their output when they fail.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { ROOT } from './workspace.js'

export interface RunResult {
  stdout: string
  stderr: string
  status: number | null
}

export interface RunOptions {
  cwd: string
  env?: Record<string, string | undefined>
  /** Resolve with a non-zero exit status instead of failing. */
  allowFailure?: boolean
  timeoutMs?: number
}

export function run(command: string, args: readonly string[], options: RunOptions): RunResult {
  const res = spawnSync(command, args, {
    cwd: options.cwd,
    encoding: 'utf8',
    env: { ...process.env, ...options.env },
    maxBuffer: 64 * 1024 * 1024,
    timeout: options.timeoutMs ?? 120_000,
  })
  if (res.error) throw new Error(`${command} ${args.join(' ')}: ${res.error.message}`)
  const result = { stdout: res.stdout, stderr: res.stderr, status: res.status }
  if (res.status !== 0 && options.allowFailure !== true) {
    throw new Error(
      `\`${command} ${args.join(' ')}\` in ${options.cwd} exited with ${res.status ?? res.signal}\n--- stdout\n${res.stdout}\n--- stderr\n${res.stderr}`,
    )
  }
  return result
}

/** The workspace's TypeScript compiler, run on this Node. */
export function tsc(args: readonly string[], options: RunOptions): RunResult {
  return run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), ...args], options)
}

/** One file of a packed tarball (`package/<path>`), as text. */
export function readFromTarball(tarball: string, path: string): string {
  return run('tar', ['-xzf', tarball, '-O', `package/${path}`], { cwd: ROOT }).stdout
}

/** The file list of a packed tarball, without the leading `package/`. */
export function listTarball(tarball: string): string[] {
  return run('tar', ['-tzf', tarball], { cwd: ROOT })
    .stdout.split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''))
}
