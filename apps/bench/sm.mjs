#!/usr/bin/env node
// Stream management figures (issue 11), apart from run.mjs's table:
//
// 1. send rate and peak RSS with SM off and on, ours and xmpp.js, against server.mjs in send
//    mode (with --sm it offers <sm/> and answers <enable/> and <r/>); xmpp.js enables SM by
//    itself when offered, ours with the @xep/0198-sm plugin. Repetitions alternate the four
//    cases; medians, with the client's CPU per 100k sent. Ours with SM on, at the plugin's
//    defaults: send() settles once written (`settle: 'written'`), acks are requested by the
//    default policy, and the app pauses at 2,000 in flight until acks bring them under 1,000
//    (`sm.whenBelow(1_000)`; the queue holds 10,000; clients/ours.mjs).
// 2. acking a backlog: in-process, k stanzas sent with SM on and no ack requested, then one
//    <a h='k'/>: the time to process it (it settles k send() promises), for k = 25k, 50k, 100k.
//    Linear in k means the time per stanza stays flat.
//
// 3. pipelined (ours only, in this process): N messages sent without awaiting each batch,
//    then every send() awaited and the server's count: the cost of SM's bookkeeping without
//    the app's pacing of (1). Not at the defaults: SM on gets `queueLimit: N` (default 10,000)
//    so that all N fit without a pause; the rest is default.
//
// (1) also runs a control row, ours with SM off and `--paced`: the app pauses as it does with
//    SM on (a ping round trip every 2,000 messages), to tell the cost of pausing for acks from
//    stream management's own.
//
// 4. resume: resume.mjs (socket loss to resumed, against the project's Prosody), its line as is.
//
//   node apps/bench/sm.mjs [--n 100000] [--reps 3] [--only send,backlog,pipelined,resume]
//                          [--out FILE]   (also writes the tables as markdown, e.g. SM-RESULTS.md)
// Run `pnpm build` first (the clients import the built packages).
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startBenchServer } from './bench-server.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
/** clients/ours.mjs's SM pacing: pause at this many unacknowledged (the control row's period). */
const SM_HIGH = 2_000
const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '100000' },
    reps: { type: 'string', default: '3' },
    only: { type: 'string', default: 'send,backlog,pipelined' },
    verbose: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
})
const N = Number(args.n)
const REPS = Number(args.reps)
const only = new Set(args.only.split(','))
/** Everything printed, for --out. */
const lines = []
const print = (text) => {
  console.log(text)
  lines.push(text)
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

const startServer = (sm) =>
  startBenchServer(['--mode', 'send', '--n', String(N), ...(sm ? ['--sm'] : [])])

function runClient(client, port, sm, paced = false) {
  const res = spawnSync(
    process.execPath,
    [
      join(HERE, 'client.mjs'),
      '--client',
      client,
      '--workload',
      'send',
      '--n',
      String(N),
      '--service',
      `xmpp://127.0.0.1:${port}`,
      ...(sm ? ['--sm'] : []),
      ...(paced ? ['--paced'] : []),
    ],
    { encoding: 'utf8', timeout: 300_000, maxBuffer: 16 * 1024 * 1024 },
  )
  const last = (res.stdout ?? '').trim().split('\n').pop() ?? ''
  if (res.status !== 0 || !last.startsWith('{')) {
    throw new Error(`${client} send (sm ${sm}) failed:\n${res.stderr}${res.stdout}`)
  }
  return JSON.parse(last)
}

if (only.has('send')) {
  // [client, sm, paced]: `paced` is ours with SM off pausing as its SM app does (a control).
  const cases = [
    ['ours', false, false],
    ['ours', true, false],
    ['ours', false, true],
    ['xmppjs', false, false],
    ['xmppjs', true, false],
  ]
  const key = (client, sm, paced) => `${client}/${sm}${paced ? '/paced' : ''}`
  const results = new Map(cases.map(([c, sm, paced]) => [key(c, sm, paced), []]))
  for (let rep = 0; rep < REPS; rep++) {
    // Alternate the order so that no case always runs first.
    const order = rep % 2 === 0 ? cases : [...cases].reverse()
    for (const [client, sm, paced] of order) {
      const server = await startServer(sm)
      try {
        const result = runClient(client, server.port, sm, paced)
        if (args.verbose) console.error(key(client, sm, paced), JSON.stringify(result))
        results.get(key(client, sm, paced)).push(result)
      } finally {
        await server.stop()
      }
    }
  }
  print(`send, ${N} chat messages (batches of 100 awaited), median of ${REPS}:\n`)
  print(
    '| client | SM | msg/s | CPU s per 100k | peak RSS MB | rate SM on / off (target ≥ 0.90) | CPU SM off / on | RSS SM on / off (target < 2) |',
  )
  print('|---|---|---|---|---|---|---|---|')
  for (const client of ['ours', 'xmppjs']) {
    const off = results.get(`${client}/false`)
    const on = results.get(`${client}/true`)
    const rate = (rs) => median(rs.map((r) => r.rate))
    const rss = (rs) => median(rs.map((r) => r.maxRssMB))
    const cpu = (rs) => median(rs.map((r) => r.cpuPer100k))
    print(
      `| ${client} | off | ${rate(off).toFixed(0)} | ${cpu(off).toFixed(3)} | ${rss(off).toFixed(1)} | | | |`,
    )
    print(
      `| ${client} | on | ${rate(on).toFixed(0)} | ${cpu(on).toFixed(3)} | ${rss(on).toFixed(1)} | ${(rate(on) / rate(off)).toFixed(2)} | ${(cpu(off) / cpu(on)).toFixed(2)} | ${(rss(on) / rss(off)).toFixed(2)} |`,
    )
    if (client !== 'ours') continue
    const paced = results.get(key('ours', false, true))
    print(
      `| ours | off, paced * | ${rate(paced).toFixed(0)} | ${cpu(paced).toFixed(3)} | ${rss(paced).toFixed(1)} | on / paced: ${(rate(on) / rate(paced)).toFixed(2)} | paced / on: ${(cpu(paced) / cpu(on)).toFixed(2)} | |`,
    )
  }
  print(
    `\n\\* A control, not a target: ours with SM off, its app pausing as it does with SM on (one round trip, a ping, every ${SM_HIGH.toLocaleString('en-US')} messages: with SM on it pauses at ${SM_HIGH.toLocaleString('en-US')} unacknowledged until an <a/> acknowledges about all of them). Its gap to "off" is the cost of pausing for acks at all; its gap to "on" is stream management's own bookkeeping.`,
  )
}

if (only.has('backlog')) {
  const { createConnection } = await import('@core/connection')
  const { MemoryPeer } = await import('@test/memory-peer')
  const { xml } = await import('@core/xml')
  const { sm } = await import('@xep/0198-sm')
  print(
    '\nacking a backlog with one <a/> (in-process), median of 5 (linear: µs per stanza flat):\n',
  )
  print('| backlog | ms | µs per stanza |')
  print('|---|---|---|')
  for (const k of [25_000, 50_000, 100_000]) {
    const times = []
    for (let rep = 0; rep < 5; rep++) {
      const peer = new MemoryPeer()
      const conn = createConnection({
        transport: peer.transport,
        domain: 'example.com',
        plugins: [
          sm.with({
            requestEvery: Number.MAX_SAFE_INTEGER,
            requestAfter: 3_600_000,
            queueLimit: k,
            // Each send() settles on its ack: the <a/> settles k promises.
            settle: 'acked',
          }),
        ],
      })
      const connecting = conn.connect()
      await peer.nextHeader()
      peer.open({ features: "<sm xmlns='urn:xmpp:sm:3'/>" })
      await peer.nextElement() // <enable/>
      peer.send("<enabled xmlns='urn:xmpp:sm:3' id='b' resume='true'/>")
      await connecting
      const sends = []
      for (let i = 0; i < k; i++) sends.push(conn.send(xml('message', { to: 'a@example.com' })))
      await new Promise((r) => setTimeout(r, 0))
      const all = Promise.all(sends)
      const t0 = performance.now()
      peer.send(`<a xmlns='urn:xmpp:sm:3' h='${k}'/>`)
      await all
      times.push(performance.now() - t0)
      await conn.dispose()
    }
    const ms = median(times)
    print(`| ${k} | ${ms.toFixed(1)} | ${((ms * 1000) / k).toFixed(2)} |`)
  }
}
if (only.has('pipelined')) {
  const { createClient } = await import('@client/preset')
  const { xml } = await import('@core/xml')
  const { sm } = await import('@xep/0198-sm')
  const rates = { off: [], on: [] }
  for (let rep = 0; rep < REPS * 2; rep++) {
    const on = rep % 2 === 1
    const server = await startServer(on)
    const client = createClient({
      jid: 'bench@localhost',
      password: 'bench-pw',
      service: `xmpp://127.0.0.1:${server.port}`,
      mechanisms: ['PLAIN'],
      allowPlaintext: true,
      // Not the defaults: queueLimit is raised from 10,000 to N, so that the N sends need no
      // pause for acks (the ack-request policy is the default's).
      ...(on ? { plugins: [sm.with({ queueLimit: N })] } : {}),
    })
    let done
    const finished = new Promise((r) => {
      done = r
    })
    client.plugins.router.message({ type: 'chat' }, (m) => {
      if (m.attrs.id === 'done') done()
    })
    await client.connect()
    const t0 = performance.now()
    const sends = []
    for (let i = 0; i < N; i++) {
      sends.push(
        client.send(
          xml('message', { to: 'echo@localhost', type: 'chat' }, xml('body', null, `m ${i}`)),
        ),
      )
      // Let the writes go out every 1,000 (the transport's backpressure applies).
      if (i % 1000 === 999) await new Promise((r) => setImmediate(r))
    }
    await Promise.all(sends)
    await finished
    rates[on ? 'on' : 'off'].push(N / ((performance.now() - t0) / 1000))
    await client.disconnect()
    await server.stop()
  }
  const off = median(rates.off)
  const on = median(rates.on)
  print(
    `\npipelined send, ours, ${N} messages, median of ${REPS} (SM on with \`queueLimit: ${N}\`, not the default 10,000, so that the app never pauses; other options default):\n`,
  )
  print(`| SM off msg/s | SM on msg/s | on / off |`)
  print('|---|---|---|')
  print(`| ${off.toFixed(0)} | ${on.toFixed(0)} | ${(on / off).toFixed(2)} |`)
}
if (only.has('resume')) {
  const res = spawnSync(process.execPath, [join(HERE, 'resume.mjs'), '--reps', '20'], {
    encoding: 'utf8',
    timeout: 300_000,
  })
  const last = (res.stdout ?? '').trim().split('\n').pop() ?? ''
  if (res.status !== 0) throw new Error(`resume.mjs failed:\n${res.stderr}${res.stdout}`)
  print(`\n${last}`)
}
if (args.out) {
  const { writeFileSync } = await import('node:fs')
  const header = `# Stream management figures\n\n\`node apps/bench/sm.mjs --only ${args.only} --reps ${REPS} --out ${args.out}\` on ${process.version}, ${new Date().toISOString().slice(0, 16)} UTC (2 shared cores: throughput swings; CPU per 100k is the steadier read).\n\n`
  writeFileSync(args.out, `${header}${lines.join('\n')}\n`)
  console.error(`sm: written to ${args.out}`)
}
process.exit(0)
