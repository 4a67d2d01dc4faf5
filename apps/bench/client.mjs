#!/usr/bin/env node
// One benchmark client process: runs one workload with one client library and prints its
// figures as one JSON line. The same workload code drives every library, through the small
// adapters in clients/ (ours.mjs, xmppjs.mjs, raw.mjs).
//
//   node client.mjs --client ours|xmppjs|raw --workload recv|send|rtt|setup|idle|login
//                   --service xmpp://127.0.0.1:PORT [--n N] [--shape S]
//                   [--jid J --password P --tls]
//                   [--scram-salt B64 --scram-salted B64] [--scram-iterations N]  (login)
//
// recv   online, send <presence/>, time until N stanzas of --shape (shapes.mjs; default chat)
//        were handed to the app and read by it
// send   online, send N chat messages (batches of 100 awaited together), time until the
//        server says it counted all N
// rtt    online, 10% warm-up pings, then N sequential pings timed one by one
// setup  N sequential connections: connect() to online, then close
// idle   after a warm-up wave (not counted) and a settle time, N more clients online in this
//        process: RSS and heap per client, the memory settled again (GC, young generation
//        shrunk back). run.mjs caps the young generation (--max-semi-space-size=1).
// login  N sequential logins (TLS server, e.g. Prosody): connect() to online. With
//        --scram-salt, --scram-salted and --scram-iterations, the client is given SCRAM's salted
//        password for that salt and iteration count, as an app that cached it would (xmpp.js
//        through its credentials function, ours through @client/sasl's scramCache). With
//        --scram-iterations alone, the process first times node:crypto's PBKDF2 at that count
//        (pbkdf2Ms).
//
// Every workload also reports CPU time (process.cpuUsage) over the measured part and the peak
// RSS of the process (process.resourceUsage().maxRSS).

import { parseArgs } from 'node:util'
import v8 from 'node:v8'

const { values: args } = parseArgs({
  options: {
    client: { type: 'string' },
    workload: { type: 'string' },
    service: { type: 'string' },
    n: { type: 'string', default: '1000' },
    jid: { type: 'string', default: 'bench@localhost' },
    password: { type: 'string', default: 'bench-pw' },
    tls: { type: 'boolean', default: false },
    // Stream management on (ours: the @xep/0198-sm plugin; xmpp.js enables it by itself when
    // the server offers it: run the server with --sm).
    sm: { type: 'boolean', default: false },
    // ours, SM off: the app pauses as it does with SM on (clients/ours.mjs; sm.mjs's control).
    paced: { type: 'boolean', default: false },
    shape: { type: 'string', default: 'chat' },
    'scram-salt': { type: 'string' },
    'scram-salted': { type: 'string' },
    'scram-iterations': { type: 'string' },
  },
})
const N = Number(args.n)
const SEND_BATCH = 100
const IDLE_WAVE = 50
// 500, not 100: with 100 the process still paid one-time costs (V8 compiling the reader's hot
// paths, about 2.5 MB of RSS) during the measured wave, which showed as 2.5 KB more RSS per
// client at --n 1000 and nothing at --n 3000; with 500 both give the same figure.
const IDLE_WARM = 500
const IDLE_SETTLE_MIN = 1000
const IDLE_SETTLE_POLL = 500
const IDLE_SETTLE_MAX = 15_000
const TO = 'echo@localhost'

const { create } = await import(`./clients/${args.client}.mjs`)
const { SHAPES } = await import('./shapes.mjs')
/** @type {import('./clients/types.mjs').ClientConfig} */
const base = {
  jid: args.jid,
  password: args.password,
  service: args.service,
  mechanism: args.tls ? 'SCRAM-SHA-1' : 'PLAIN',
  plaintext: !args.tls,
  sm: args.sm,
  paced: args.paced,
  ...(args['scram-salt'] && args['scram-salted']
    ? {
        scramCache: {
          salt: new Uint8Array(Buffer.from(args['scram-salt'], 'base64')),
          saltedPassword: new Uint8Array(Buffer.from(args['scram-salted'], 'base64')),
          iterations: Number(args['scram-iterations']),
        },
      }
    : {}),
}

const now = () => performance.now()
const cpuSeconds = (since) => {
  const d = process.cpuUsage(since)
  return (d.user + d.system) / 1e6
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}
const gc = async () => {
  for (let i = 0; i < 4; i++) {
    globalThis.gc?.()
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Counts messages handed to the app; resolves `reached` at `target`, `done` on id 'done'. */
function counter(target) {
  let count = 0
  let reached
  let done
  const state = {
    reached: new Promise((r) => (reached = r)),
    done: new Promise((r) => (done = r)),
    bytes: 0,
    onMessage(id, body) {
      if (id === 'done') return done()
      state.bytes += body?.length ?? 0
      if (++count === target) reached()
    },
    get count() {
      return count
    },
  }
  return state
}

async function recv() {
  const shape = SHAPES[args.shape]
  if (!shape) throw new Error(`unknown shape ${args.shape}`)
  let count = 0
  let bytes = 0
  let reached
  let online = false
  const done = new Promise((r) => (reached = r))
  const handle = (stanza) => {
    // xmpp.js also hands the app stanzas of its own negotiation (the bind result).
    if (!online) return
    bytes += shape.read(stanza).length
    if (++count === N) reached()
  }
  const c = create({ ...base, recv: { route: shape.route, handle } })
  await c.connect()
  online = true
  const cpu = process.cpuUsage()
  const t0 = now()
  await c.presence()
  await done
  const seconds = (now() - t0) / 1000
  const cpuS = cpuSeconds(cpu)
  await c.close()
  if (bytes === 0) throw new Error('the app read nothing')
  return { rate: N / seconds, seconds, cpuPer100k: (cpuS * 1e5) / N }
}

async function send() {
  const seen = counter(Number.POSITIVE_INFINITY)
  const c = create({ ...base, onMessage: seen.onMessage })
  await c.connect()
  const cpu = process.cpuUsage()
  const t0 = now()
  for (let i = 0; i < N; ) {
    const batch = []
    for (const end = Math.min(N, i + SEND_BATCH); i < end; i++) {
      batch.push(c.message(TO, `message number ${i}`))
    }
    await Promise.all(batch)
  }
  await seen.done
  const seconds = (now() - t0) / 1000
  const cpuS = cpuSeconds(cpu)
  await c.close()
  return { rate: N / seconds, seconds, cpuPer100k: (cpuS * 1e5) / N }
}

async function rtt() {
  const c = create(base)
  await c.connect()
  for (let i = 0, warm = Math.max(50, N / 10); i < warm; i++) await c.ping()
  const times = new Float64Array(N)
  const cpu = process.cpuUsage()
  for (let i = 0; i < N; i++) {
    const t = process.hrtime.bigint()
    await c.ping()
    times[i] = Number(process.hrtime.bigint() - t) / 1000
  }
  const cpuS = cpuSeconds(cpu)
  await c.close()
  return {
    p50: percentile(times, 50),
    p99: percentile(times, 99),
    cpuPer100k: (cpuS * 1e5) / N,
  }
}

/** node:crypto's PBKDF2 (SHA-1, 20 bytes) at `iterations`, median of 5, in ms. */
async function pbkdf2Ms(iterations) {
  const { pbkdf2 } = await import('node:crypto')
  const times = []
  for (let i = 0; i < 5; i++) {
    const t = now()
    await new Promise((resolve, reject) =>
      pbkdf2('password', 'salt-salt-salt', iterations, 20, 'sha1', (e) =>
        e ? reject(e) : resolve(),
      ),
    )
    times.push(now() - t)
  }
  return median(times)
}

/** setup and login: N sequential connections, connect() to online. */
async function connects() {
  const iterations = base.scramCache ? 0 : Number(args['scram-iterations'] ?? 0)
  const pbkdf2 = iterations > 0 ? await pbkdf2Ms(iterations) : undefined
  const times = []
  const cpu = process.cpuUsage()
  for (let i = 0; i < N; i++) {
    const c = create(base)
    const t = now()
    await c.connect()
    times.push(now() - t)
    await c.close()
  }
  const cpuS = cpuSeconds(cpu)
  return {
    ms: median(times),
    min: Math.min(...times),
    cpuPerConnectMs: (cpuS * 1000) / N,
    ...(pbkdf2 === undefined ? {} : { pbkdf2Ms: pbkdf2 }),
  }
}

/** Connects `n` clients in waves of IDLE_WAVE, each wave awaited; pushes them to `into`. */
async function connectWaves(n, into) {
  for (let i = 0; i < n; i += IDLE_WAVE) {
    const wave = []
    for (let j = i; j < Math.min(n, i + IDLE_WAVE); j++) {
      const c = create(base)
      into.push(c)
      wave.push(c.connect())
    }
    await Promise.all(wave)
  }
}

/**
 * Waits until the process's memory has settled: V8 grows its young generation during a burst
 * of connects and gives it back only after a few seconds of quiet (its memory reducer). Polls
 * every IDLE_SETTLE_POLL ms after IDLE_SETTLE_MIN ms, each time after a full GC, until the young
 * generation's size and the RSS (within 1%) are the same twice in a row, or IDLE_SETTLE_MAX.
 * Returns the settled memory and how long it took.
 */
async function settle() {
  const t0 = now()
  const young = () =>
    v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0
  await new Promise((r) => setTimeout(r, IDLE_SETTLE_MIN))
  await gc()
  let last = { rss: process.memoryUsage().rss, young: young() }
  let same = 0
  while (now() - t0 < IDLE_SETTLE_MAX && same < 2) {
    await new Promise((r) => setTimeout(r, IDLE_SETTLE_POLL))
    await gc()
    const cur = { rss: process.memoryUsage().rss, young: young() }
    same = cur.young === last.young && Math.abs(cur.rss - last.rss) <= last.rss / 100 ? same + 1 : 0
    last = cur
  }
  await gc()
  return { memory: process.memoryUsage(), ms: now() - t0 }
}

/**
 * N idle clients online in one process. A warm-up wave of IDLE_WARM clients first (kept
 * online, not counted): it compiles the code paths and fills what a process pays once (module
 * caches, pools, the young generation's first growth). Then the memory settles, N clients
 * connect, the memory settles again; per client = the difference / N.
 */
async function idle() {
  const warm = []
  await connectWaves(IDLE_WARM, warm)
  const before = await settle()
  const clients = []
  await connectWaves(N, clients)
  const after = await settle()
  return {
    rssKB: (after.memory.rss - before.memory.rss) / 1024 / N,
    heapKB: (after.memory.heapUsed - before.memory.heapUsed) / 1024 / N,
    clients: clients.length,
    warm: warm.length,
    settleMs: [Math.round(before.ms), Math.round(after.ms)],
  }
}

const workloads = { recv, send, rtt, setup: connects, login: connects, idle }
const run = workloads[args.workload]
if (!run) throw new Error(`unknown workload ${args.workload}`)
const result = await run()
result.maxRssMB = process.resourceUsage().maxRSS / 1024
process.stdout.write(`${JSON.stringify(result)}\n`)
// idle leaves its clients connected on purpose; the others have closed. Exit either way.
process.exit(0)
