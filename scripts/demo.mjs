#!/usr/bin/env node
// `pnpm demo [args]`: builds the demo and what it depends on (quietly; the output is shown
// only when the build fails), then runs it with the given arguments.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
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
// Run as `pnpm demo`, a non-zero exit makes pnpm print its own `[ELIFECYCLE] Command failed`
// line after the demo's, and the demo's last line (which names the failure) must stay last.
// So under pnpm the demo's outcome is its last line, and the exit status is 0 unless the
// demo could not run at all; `node apps/demo/dist/main.js ...` (or DEMO_EXIT_STATUS=1) keeps
// the demo's own exit status (0 ok, 1 a step failed, 2 usage) for scripts.
const status = run.status ?? 1
const env = { ...process.env }
const underPnpm = env.npm_lifecycle_event === 'demo' && env.DEMO_EXIT_STATUS !== '1'
process.exit(underPnpm && (status === 1 || status === 2) ? 0 : status)
