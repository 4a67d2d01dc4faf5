#!/usr/bin/env node
// From an abrupt socket loss to a resumed session (XEP-0198), against Prosody on loopback
// (issue 11's figure; its target: at most 50 ms).
//
//   node apps/bench/resume.mjs [--reps 20]
//
// Starts the project's Prosody (scripts/prosody.mjs) unless one runs, logs in once with the
// client preset, @xep/0198-sm and @hooks/lifecycle (STARTTLS, SCRAM-SHA-1, Nagle off), then
// --reps times: destroys the TCP socket (no close handshake, as a network loss looks to the
// client) and times until lifecycle's post-resume hook ran (lifecycle's first retry is
// prompt; SM sends <resume/> after SASL). Prints the median and min..max, and checks each
// time that the session was resumed rather than started afresh.
// Run `pnpm build` first (it imports the built packages).
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createClient } from '@client/preset'
import { lifecycle } from '@hooks/lifecycle'
import { sm } from '@xep/0198-sm'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..')
const { values: args } = parseArgs({ options: { reps: { type: 'string', default: '20' } } })
const REPS = Number(args.reps)

const prosody = (argv) =>
  spawnSync(process.execPath, [join(ROOT, 'scripts/prosody.mjs'), ...argv], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 90_000,
  })
const started = prosody(['start', '--json', `--owner=bench-resume:${process.pid}`])
if (started.status !== 0) {
  console.error(`resume: Prosody did not start: ${started.stderr.trim()}`)
  process.exit(1)
}
const state = JSON.parse(started.stdout.trim().split('\n').pop())

const client = createClient({
  service: `xmpp://${state.host}:${state.ports.c2s}`,
  jid: `carol@${state.domain}/resume-bench`,
  password: state.users.carol,
  tls: { insecure: true },
  plugins: [sm, lifecycle.with({ idleTimeout: 0 })],
})
const times = []
try {
  await client.plugins.lifecycle.start()
  if (!client.plugins.sm.resumable) throw new Error('Prosody did not enable resumable SM')
  let fresh = 0
  client.hooks.on('post-connect', () => {
    fresh++
  })
  for (let i = 0; i < REPS; i++) {
    const resumed = client.hooks.next('post-resume')
    const t0 = performance.now()
    client.transport?.destroy()
    await resumed
    times.push(performance.now() - t0)
    // Let the session settle (the server's ack of the resumption) before the next loss.
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  if (fresh > 0) throw new Error(`${fresh} reconnection(s) started a new session instead`)
} finally {
  await client.plugins.lifecycle.stop()
  if (!state.reused) prosody(['stop'])
}
const sorted = [...times].sort((a, b) => a - b)
const median = sorted[sorted.length >> 1]
const f = (ms) => ms.toFixed(1)
console.log(
  `socket loss to resumed, Prosody ${state.version} (loopback, STARTTLS + SCRAM-SHA-1 + <resume/>): median ${f(median)} ms (${f(sorted[0])}..${f(sorted.at(-1))}) over ${REPS}; target <= 50 ms`,
)
