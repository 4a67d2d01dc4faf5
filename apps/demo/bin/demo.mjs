#!/usr/bin/env node
// `pnpm demo [args]`: builds the demo and what it depends on (quietly; the output is shown
// only when the build fails), then runs it with the given arguments. The root package.json
// has no `demo` script on purpose: `pnpm demo` then runs this file as the workspace's `demo`
// binary (the root depends on this app), and pnpm adds no `[ELIFECYCLE]` line after a failed
// run, so the demo's own line stays the last one.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../..', import.meta.url))
const build = spawnSync(
  'pnpm',
  ['exec', 'turbo', 'run', 'build', '--filter=demo...', '--output-logs=errors-only'],
  { cwd: root, encoding: 'utf8', env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' } },
)
if (build.status !== 0) {
  process.stderr.write(build.stdout + build.stderr)
  process.stderr.write('demo: the build failed (output above)\n')
  process.exit(build.status ?? 1)
}
const run = spawnSync(process.execPath, ['apps/demo/dist/main.js', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
})
// The demo's own exit status: 0 only when every step succeeded, 1 when a step failed, 2 for
// a usage error.
process.exit(run.status ?? 1)
