#!/usr/bin/env node
// `pnpm bench`: this project's client against @xmpp/client 0.14, each in its own process with
// the same workload, in counterbalanced pairs (ours, xmpp.js, then xmpp.js, ours, ...) over
// --reps repetitions, so that neither side always meets a freshly started server; against the
// scripted server (server.mjs) in a process of its own; the server and the clients are pinned
// to different cores with taskset when there are two or more. Prints the table and writes it to
// apps/bench/RESULTS.md (not with --smoke).
//
//   node apps/bench/run.mjs [--only recv,send,rtt,setup,idle,login] [--reps 6] [--smoke]
//                           [--shapes chat,chat-rich,presence,roster,groupchat]
//                           [--json] [--no-build] [--out FILE]
//
// --shapes  the stanza shapes of the recv figure (shapes.mjs); default all (smoke: chat)
// --smoke   the CI smoke test: recv and send (the only gated figures) in 4 pairs, rtt, setup
//           and idle small and in 2 pairs (printed, never gated), no Prosody, no RESULTS.md
// --json    the figures as one JSON line on stdout; the table goes to stderr
// --no-build  skip building @client/preset and what it depends on

import { spawnSync } from 'node:child_process'
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto'
import { cpus } from 'node:os'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startBenchServer } from './bench-server.mjs'
import { SHAPE_NAMES } from './shapes.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = resolve(HERE, '../..')
const FIGURES = ['recv', 'send', 'rtt', 'setup', 'idle', 'login']

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    shapes: { type: 'string' },
    reps: { type: 'string' },
    smoke: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
})
const smoke = args.smoke
/** Pairs of runs per figure; the smoke gives its gated figures more (best pair is gated). */
const GATED = ['recv', 'send']
const reps = Number(args.reps ?? 6)
const repsOf = (figure) =>
  args.reps !== undefined
    ? reps
    : smoke
      ? GATED.includes(figure)
        ? 4
        : figure === 'idle'
          ? 1
          : 2
      : reps
const only = args.only ? args.only.split(',').map((s) => s.trim()) : FIGURES
for (const f of only) {
  if (!FIGURES.includes(f)) {
    console.error(`bench: unknown figure ${f} (known: ${FIGURES.join(', ')})`)
    process.exit(2)
  }
}
const shapes = args.shapes
  ? args.shapes.split(',').map((s) => s.trim())
  : smoke
    ? ['chat']
    : SHAPE_NAMES
for (const s of shapes) {
  if (!SHAPE_NAMES.includes(s)) {
    console.error(`bench: unknown shape ${s} (known: ${SHAPE_NAMES.join(', ')})`)
    process.exit(2)
  }
}
if (!(reps >= 1)) {
  console.error('bench: --reps must be a positive number')
  process.exit(2)
}
const selected = FIGURES.filter((f) => only.includes(f) && !(smoke && f === 'login'))
const out = args.json ? process.stderr : process.stdout
const say = (line) => process.stderr.write(`bench: ${line}\n`)

/** Workload sizes: full run (about 8 minutes on 2 cores) and the CI smoke run. */
const SIZES = smoke
  ? { recv: 100_000, send: 100_000, rtt: 1_000, setup: 30, idle: 500, login: 0 }
  : { recv: 200_000, send: 200_000, rtt: 5_000, setup: 300, idle: 1_000, login: 5 }
/**
 * recv stanzas per shape in the full run: about 50 MB each, the 2 kB roster results fewer.
 * The smoke run uses SIZES.recv for its one shape.
 */
const RECV_SIZES = {
  chat: 200_000,
  'chat-rich': 100_000,
  presence: 100_000,
  groupchat: 100_000,
  roster: 25_000,
}

// ---------------------------------------------------------------------------------------------
// Build (quietly, like apps/demo/bin/demo.mjs: the output is shown only when it fails)

if (!args['no-build']) {
  const build = spawnSync(
    'pnpm',
    ['exec', 'turbo', 'run', 'build', '--filter=@client/preset...', '--output-logs=errors-only'],
    { cwd: ROOT, encoding: 'utf8', env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' } },
  )
  if (build.status !== 0) {
    process.stderr.write((build.stdout ?? '') + (build.stderr ?? ''))
    say('the build failed (output above)')
    process.exit(build.status ?? 1)
  }
}

// ---------------------------------------------------------------------------------------------
// Pinning

const cores = cpus().length
const canPin =
  cores >= 2 && spawnSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' }).status === 0
const pinning = canPin
  ? 'server on core 0, clients on core 1 (taskset); rtt: both on core 1'
  : cores < 2
    ? 'not pinned: one core'
    : 'not pinned: taskset (util-linux) is not available'
if (!canPin) say(pinning)
const pinned = (core, argv) =>
  canPin ? ['taskset', ['-c', String(core), ...argv]] : [argv[0], argv.slice(1)]

// ---------------------------------------------------------------------------------------------
// Processes

/** Starts server.mjs in `mode` on `core`; resolves with its port and a stop function. */
const startServer = (mode, n, core = 0, more = []) =>
  startBenchServer(['--mode', mode, '--n', String(n), ...more], (argv) => pinned(core, argv).flat())

/** Runs one client process; returns its JSON result. */
function runClient(client, workload, n, service, extra = {}) {
  const [cmd, argv] = pinned(1, [
    process.execPath,
    '--expose-gc',
    // idle: V8's young generation may not grow past 1 MB per semi-space. It grows during the
    // burst of connects otherwise, and Node 22 and 24 do not give those pages back to the
    // system after it shrinks: RSS would count garbage space, not what the clients keep.
    ...(workload === 'idle' ? ['--max-semi-space-size=1'] : []),
    join(HERE, 'client.mjs'),
    '--client',
    client,
    '--workload',
    workload,
    '--n',
    String(n),
    '--service',
    service,
    ...(extra.args ?? []),
  ])
  const res = spawnSync(cmd, argv, {
    encoding: 'utf8',
    timeout: 180_000,
    maxBuffer: 16 * 1024 * 1024,
    env: { ...process.env, ...(extra.env ?? {}) },
  })
  const last = (res.stdout ?? '').trim().split('\n').pop() ?? ''
  if (res.status !== 0 || !last.startsWith('{')) {
    throw new Error(
      `${client} ${workload} failed (exit ${res.status ?? res.signal ?? res.error?.message}):\n${res.stderr}${res.stdout}`,
    )
  }
  return JSON.parse(last)
}

// ---------------------------------------------------------------------------------------------
// Prosody (login figure): reuse the running one, or start one and stop it afterwards

function prosodyScript(argv, timeout = 90_000) {
  return spawnSync(process.execPath, [join(ROOT, 'scripts/prosody.mjs'), ...argv], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout,
  })
}

function startProsody() {
  const res = prosodyScript(['start', '--json', `--owner=bench:${process.pid}`])
  if (res.status !== 0) {
    const why = (res.stderr || res.error?.message || `exit ${res.status}`).trim().split('\n')
    return { skipped: `Prosody did not start: ${why[why.length - 1]}` }
  }
  const state = JSON.parse(res.stdout.trim().split('\n').pop() ?? '')
  return { state }
}

/**
 * What an app that logged in before would have cached (RFC 5802 §3: SaltedPassword depends on
 * the password, the salt and the iteration count only): read the salt and the iteration count
 * from Prosody's account store, derive SaltedPassword once, and check it against the stored
 * key, so that a wrong guess shows up here and not as a failed login.
 */
function scramCache(state, user) {
  try {
    const store = join(state.dir, 'data', encodeURIComponent(state.domain).replaceAll('.', '%2e'))
    const text = readFileSync(join(store, 'accounts', `${user}.dat`), 'utf8')
    const field = (name) => new RegExp(`\\["${name}"\\] = "?([^";]*)"?;`).exec(text)?.[1]
    const salt = Buffer.from(field('salt') ?? '', 'utf8')
    const iterations = Number(field('iteration_count'))
    const storedKey = field('stored_key')
    if (salt.length === 0 || !(iterations > 0) || !storedKey) {
      return { skipped: `no SCRAM data for ${user} in Prosody's account store` }
    }
    const salted = pbkdf2Sync(state.users[user], salt, iterations, 20, 'sha1')
    const clientKey = createHmac('sha1', salted).update('Client Key').digest()
    if (createHash('sha1').update(clientKey).digest('hex') !== storedKey) {
      return { skipped: 'the derived salted password does not match the stored key' }
    }
    return {
      salt: salt.toString('base64'),
      saltedPassword: salted.toString('base64'),
      iterations,
    }
  } catch (error) {
    return { skipped: `Prosody's account store: ${error.message}` }
  }
}

// ---------------------------------------------------------------------------------------------
// The runs

const CLIENTS = { rtt: ['ours', 'xmppjs', 'raw'], idle: ['ours', 'xmppjs', 'raw'] }
const SERVER_MODE = { recv: 'recv', send: 'send', rtt: 'rtt', setup: 'idle', idle: 'idle' }
/** results[figure][client] = one result object per repetition */
const results = {}
const notes = []
/** SCRAM iteration count of the Prosody account (login:cached). */
let scramIterations
const started = Date.now()

/** One entry per measured run: a figure, or recv once per shape (key `recv:<shape>`). */
const runs = selected.flatMap((figure) =>
  figure === 'recv'
    ? shapes.map((shape) => ({ key: `recv:${shape}`, figure, shape }))
    : figure === 'login'
      ? [
          { key: 'login', figure },
          { key: 'login:cached', figure, cached: true },
        ]
      : [{ key: figure, figure }],
)
// login:cached takes milliseconds per login (no PBKDF2 in either client): more of them per process.
const sizeOf = (run) =>
  run.cached ? 20 : run.shape === undefined || smoke ? SIZES[run.figure] : RECV_SIZES[run.shape]

for (const run of runs) {
  const { key, figure } = run
  const n = sizeOf(run)
  const clients = CLIENTS[figure] ?? ['ours', 'xmppjs']
  results[key] = Object.fromEntries(clients.map((c) => [c, []]))
  let service
  let stop = async () => {}
  let extra = () => (run.shape ? { args: ['--shape', run.shape] } : {})
  if (figure === 'login') {
    const prosody = startProsody()
    if (prosody.skipped) {
      say(`login: skipped: ${prosody.skipped}`)
      notes.push(`login against Prosody: skipped (${prosody.skipped})`)
      delete results[key]
      continue
    }
    const { state } = prosody
    service = `xmpp://${state.host}:${state.ports.c2s}`
    const user = state.users.carol ? 'carol' : Object.keys(state.users)[0]
    const login = ['--tls', '--jid', `${user}@${state.domain}`, '--password', state.users[user]]
    let cache = []
    if (run.cached) {
      const cached = scramCache(state, user)
      if (cached.skipped) {
        say(`login (cached): skipped: ${cached.skipped}`)
        notes.push(`login with a cached salted password: skipped (${cached.skipped})`)
        delete results[key]
        if (!state.reused) prosodyScript(['stop'])
        continue
      }
      scramIterations = cached.iterations
      cache = [
        '--scram-salt',
        cached.salt,
        '--scram-salted',
        cached.saltedPassword,
        '--scram-iterations',
        String(cached.iterations),
      ]
    }
    // Prosody's certificate is self-signed: ours is told tls.insecure; xmpp.js has no such
    // option, so certificate checks are turned off in its process only. With `cached`, both
    // are given the same salted password for the account's salt and iteration count (xmpp.js
    // through its credentials function, ours through @client/sasl's scramCache).
    extra = (client) => ({
      args: [...login, ...cache],
      env: client === 'xmppjs' ? { NODE_TLS_REJECT_UNAUTHORIZED: '0', NODE_NO_WARNINGS: '1' } : {},
    })
    if (!state.reused) stop = async () => void prosodyScript(['stop'])
    if (!run.cached) {
      notes.push(`login against Prosody ${state.version ?? ''} on ${service} as ${user}`.trim())
    }
  } else {
    // rtt: server and client share core 1, as the issue measured it: a round trip is then the
    // CPU work of both sides plus the socket, with no cross-core wake-up in it.
    const server = await startServer(
      SERVER_MODE[figure],
      n,
      figure === 'rtt' ? 1 : 0,
      run.shape ? ['--shape', run.shape] : [],
    )
    service = `xmpp://127.0.0.1:${server.port}`
    stop = server.stop
  }
  try {
    const count = repsOf(figure)
    for (let rep = 0; rep < count; rep++) {
      const line = []
      // Counterbalanced: odd repetitions run the clients in reverse order (ours, xmpp.js,
      // xmpp.js, ours, ...), so a cold server, a cache or a busy neighbour does not always
      // meet the same side first. Results stay indexed by repetition, so pairs line up.
      for (const client of rep % 2 ? [...clients].reverse() : clients) {
        const r = runClient(client, figure, n, service, extra(client))
        results[key][client].push(r)
        line.push(`${client} ${brief(figure, r)}`)
      }
      say(`${key} ${rep + 1}/${count}: ${line.join(', ')}`)
    }
  } finally {
    await stop()
  }
}

function brief(figure, r) {
  switch (figure) {
    case 'recv':
    case 'send':
      return `${Math.round(r.rate / 1000)}k/s`
    case 'rtt':
      return `p50 ${r.p50.toFixed(1)} µs`
    case 'setup':
    case 'login':
      return `${r.ms.toFixed(2)} ms`
    case 'idle':
      return `${r.rssKB.toFixed(1)} KB RSS, ${r.heapKB.toFixed(1)} KB heap`
    default:
      return ''
  }
}

// ---------------------------------------------------------------------------------------------
// The report

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/**
 * Rows: figure, unit, which way is better, the per-repetition values of both clients
 * ([ours, xmpp.js]), and the target on the ratio ours/xmpp.js where the issue sets one. The
 * smoke floor (only on recv and send throughput) is checked against the best pair: the ratio
 * of one repetition's two runs, taken back to back, the best of them. A busy neighbour slows
 * single runs; it would have to slow ours in every pair to fail the gate.
 */
const rows = []
function row(name, unit, better, [ours, theirs], { target, floor, digits = 1 } = {}) {
  const mo = median(ours)
  const mt = median(theirs)
  const ratio = mo / mt
  // A pair that measured nothing gives NaN, and so does `best`: the gate then fails.
  const pairs = ours.map((x, i) => x / theirs[i])
  const pick = better === 'higher' ? Math.max : Math.min
  const best = pairs.length === 0 ? Number.NaN : pick(...pairs)
  const check = (value, limit) =>
    limit === undefined ? undefined : better === 'higher' ? value >= limit : value <= limit
  rows.push({
    name,
    unit,
    better,
    ours: { median: mo, min: Math.min(...ours), max: Math.max(...ours), runs: ours },
    xmppjs: { median: mt, min: Math.min(...theirs), max: Math.max(...theirs), runs: theirs },
    ratio,
    pairs,
    best,
    target,
    met: check(ratio, target),
    floor,
    floorMet: check(best, floor),
    digits,
  })
}
const col = (figure, client, key) => (results[figure]?.[client] ?? []).map((r) => r[key])
/** The values of `key` for ours and xmpp.js, repetition by repetition. */
const both = (figure, key) => [col(figure, 'ours', key), col(figure, 'xmppjs', key)]
/** The same, minus the raw socket's value in the same repetition. */
const bothOverRaw = (figure, key) => {
  const raw = col(figure, 'raw', key)
  return both(figure, key).map((xs) => xs.map((x, i) => x - (raw[i] ?? Number.NaN)))
}
const has = (figure) => results[figure] !== undefined
const peakRss = (figure) => row(`${figure} peak RSS`, 'MB', 'lower', both(figure, 'maxRssMB'))

// recv: one throughput and one CPU row per shape; the target and the smoke floor hold for
// every shape.
for (const shape of shapes) {
  const key = `recv:${shape}`
  if (!has(key)) continue
  row(`recv throughput (${shape})`, 'stanzas/s', 'higher', both(key, 'rate'), {
    target: 3,
    floor: 1.5,
    digits: 0,
  })
  row(`recv CPU per 100k stanzas (${shape})`, 's', 'lower', both(key, 'cpuPer100k'), {
    digits: 3,
  })
}
if (has('recv:chat')) row('recv peak RSS (chat)', 'MB', 'lower', both('recv:chat', 'maxRssMB'))
if (has('send')) {
  row('send throughput', 'stanzas/s', 'higher', both('send', 'rate'), {
    target: 2.5,
    floor: 1.25,
    digits: 0,
  })
  row('send CPU per 100k stanzas', 's', 'lower', both('send', 'cpuPer100k'), { digits: 3 })
  peakRss('send')
}
if (has('rtt')) {
  row('rtt p50', 'µs', 'lower', both('rtt', 'p50'))
  row('rtt p99', 'µs', 'lower', both('rtt', 'p99'))
  row('rtt p50 overhead over raw socket', 'µs', 'lower', bothOverRaw('rtt', 'p50'), {
    target: 0.5,
  })
  row('rtt CPU per 100k pings', 's', 'lower', both('rtt', 'cpuPer100k'), { digits: 2 })
  peakRss('rtt')
}
if (has('setup')) {
  row('connection setup to online (scripted, no TLS)', 'ms', 'lower', both('setup', 'ms'), {
    target: 1,
    digits: 3,
  })
  peakRss('setup')
}
if (has('idle')) {
  // The issue's figure: what a library adds to a connected socket, per idle client, after a
  // warm-up wave and with the memory settled (client.mjs idle()): the raw client's figure of
  // the same repetition subtracted.
  row('idle heap per client over a raw socket', 'KB', 'lower', bothOverRaw('idle', 'heapKB'), {
    target: 1 / 3,
  })
  row('idle RSS per client over a raw socket', 'KB', 'lower', bothOverRaw('idle', 'rssKB'), {
    target: 1 / 3,
  })
  row('idle heap per connected client', 'KB', 'lower', both('idle', 'heapKB'))
  row('idle RSS per connected client', 'KB', 'lower', both('idle', 'rssKB'))
  peakRss('idle')
}
if (has('login')) {
  // Mostly PBKDF2: xmpp.js derives SCRAM's salted password with one awaited WebCrypto HMAC per
  // iteration; ours with one native node:crypto call.
  const name =
    'login to online, Prosody (STARTTLS + SCRAM-SHA-1, Nagle off): mostly compares PBKDF2 implementations'
  row(name, 'ms', 'lower', both('login', 'ms'), { target: 1 / 25 })
}
if (has('login:cached')) {
  const name = `login to online, Prosody, both given the same cached salted password (${scramIterations?.toLocaleString('en-US')} iterations, no PBKDF2): the framework's own login cost`
  row(name, 'ms', 'lower', both('login:cached', 'ms'))
}

const fmt = (x, digits) =>
  Number.isFinite(x)
    ? x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : String(x)
/** median (min..max) of the per-repetition values, `digits` decimals. */
const spread = (xs, digits = 1) =>
  `${fmt(median(xs), digits)} (${fmt(Math.min(...xs), digits)}..${fmt(Math.max(...xs), digits)})`
const ratioText = (r) =>
  r.target === undefined
    ? ''
    : `${r.better === 'higher' ? '≥' : '≤'} ${fmt(r.target, r.target < 0.1 ? 2 : r.target < 1 ? 2 : 1)}`
const table = [
  '| figure | better | ours: median (min..max) | xmpp.js: median (min..max) | ours/xmpp.js | target | met |',
  '|---|---|---|---|---|---|---|',
  ...rows.map((r) => {
    const cell = (s) => `${spread(s.runs, r.digits)} ${r.unit}`
    const met = r.met === undefined ? '' : r.met ? 'yes' : 'no'
    return `| ${r.name} | ${r.better} | ${cell(r.ours)} | ${cell(r.xmppjs)} | ${fmt(r.ratio, 2)} | ${ratioText(r)} | ${met} |`
  }),
  '| send with SM on vs off | | TODO: @xep/0198-sm not built yet | | | within 10%, RSS ≤ +20% | |',
  '| acking a 100k backlog | | TODO: @xep/0198-sm not built yet | | | linear (ms) | |',
  '| socket loss to resumed, Prosody | | TODO: @xep/0198-sm not built yet | | | ≤ 50 ms | |',
]
const rawLine = has('rtt')
  ? `raw-socket baseline (same handshake and ping bytes, no XML): p50 ${spread(col('rtt', 'raw', 'p50'))} µs, p99 ${fmt(median(col('rtt', 'raw', 'p99')), 1)} µs`
  : undefined
const settleMs = col('idle', 'ours', 'settleMs')
  .concat(col('idle', 'xmppjs', 'settleMs'), col('idle', 'raw', 'settleMs'))
  .flat()
const rawIdleLine = has('idle')
  ? `idle: young generation capped (\`--max-semi-space-size=1\`), a warm-up wave of 500 clients (online, not counted), then the memory settled (full GCs until the young generation and the RSS stop changing: ${fmt(Math.min(...settleMs) / 1000, 1)}..${fmt(Math.max(...settleMs) / 1000, 1)} s), then N clients, settled again. Raw-socket baseline (one net.Socket, same handshake, no XML) per client: ${spread(col('idle', 'raw', 'heapKB'))} KB heap, ${spread(col('idle', 'raw', 'rssKB'))} KB RSS`
  : undefined
if (has('login:cached')) {
  notes.push(
    `login, cached: both clients are given the same SCRAM-SHA-1 salted password for the account's salt and ${fmt(scramIterations ?? Number.NaN, 0)} iterations, read from Prosody's account store and checked against its stored key (xmpp.js through its \`credentials\` function, ours through @client/sasl's \`scramCache\`, seeded once per process): neither runs PBKDF2, so the row shows each framework's own login cost (TLS, SCRAM's HMACs, the stream negotiation)`,
  )
}
if (has('login')) {
  const ms = median(col('login', 'ours', 'ms'))
  notes.push(
    `login absolute target ≤ 30 ms: ours ${fmt(ms, 1)} ms (${ms <= 30 ? 'met' : 'not met'})`,
  )
}

const cpuModel =
  (() => {
    try {
      return /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]
    } catch {
      return undefined
    }
  })() ??
  cpus()[0]?.model ??
  'unknown'
const command = `pnpm bench${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`
const xmppjsVersion = JSON.parse(
  readFileSync(join(HERE, 'node_modules/@xmpp/client/package.json'), 'utf8'),
).version
const machine = [
  `- date: ${new Date().toISOString()}`,
  `- command: \`${command}\` (${Math.round((Date.now() - started) / 1000)} s)`,
  `- node ${process.version}, @xmpp/client ${xmppjsVersion}`,
  `- CPU: ${cpuModel}, ${cores} cores; ${pinning}`,
  `- repetitions: ${selected.map((f) => `${f} ${repsOf(f)}`).join(', ')}; counterbalanced pairs (ours, xmpp.js, then xmpp.js, ours; the raw socket last, then first, for rtt and idle), each client in its own process`,
  `- sizes: ${runs.map((r) => `${r.key} ${sizeOf(r).toLocaleString('en-US')}`).join(', ')}`,
]

out.write(`\n${table.join('\n')}\n`)
const gated = smoke ? rows.filter((r) => r.floor !== undefined) : []
if (gated.length > 0) out.write('\n')
for (const r of gated) {
  const sign = r.better === 'higher' ? '≥' : '≤'
  out.write(
    `gate: ${r.name}, best pair ${fmt(r.best, 2)} ${sign} ${fmt(r.floor, 2)}: ${r.floorMet ? 'pass' : 'FAIL'} (pairs ${r.pairs.map((x) => fmt(x, 2)).join(', ')})\n`,
  )
}
if (rawLine || rawIdleLine) out.write('\n')
for (const line of [rawLine, rawIdleLine]) if (line) out.write(`${line}\n`)
for (const note of notes) out.write(`${note}\n`)
out.write(`\n${machine.join('\n')}\n`)

if (!smoke) {
  const file = args.out ? resolve(args.out) : join(HERE, 'RESULTS.md')
  writeFileSync(
    file,
    `# Benchmark results\n\nThe last \`pnpm bench\` (see [README.md](README.md) for what each figure measures).\n\n${machine.join('\n')}\n\n${table.join('\n')}\n\n${[
      rawLine,
      rawIdleLine,
      ...notes,
    ]
      .filter(Boolean)
      .map((l) => `- ${l}`)
      .join('\n')}\n`,
  )
  say(`written to ${file}`)
}
if (args.json) {
  process.stdout.write(
    `${JSON.stringify({
      node: process.version,
      reps,
      sizes: Object.fromEntries(runs.map((r) => [r.key, sizeOf(r)])),
      pinning,
      machine,
      table,
      notes: [rawLine, rawIdleLine, ...notes].filter(Boolean),
      rows,
      results,
    })}\n`,
  )
}
