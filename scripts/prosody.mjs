#!/usr/bin/env node
// A private Prosody for the interop tests: its own config, certificate, data and log in a fresh
// temporary folder, listening on loopback only, on free non-default ports. Node built-ins only.
//
//   node scripts/prosody.mjs install   apt-get install prosody when it is missing (needs root)
//   node scripts/prosody.mjs start     start one (or reuse the running one); --json prints the state,
//                                      --owner=NAME is recorded in it (default: manual)
//   node scripts/prosody.mjs status    is it running? exit 0 when it is, 3 when it is not; --json
//   node scripts/prosody.mjs stop      stop it and remove its folder
//
// The state (ports, pid, folder, users, component secret, certificate) goes to
// .prosody/state.json at the repository root. Environment:
//   PROSODY_BIN, PROSODY_CTL_BIN   the executables (default: `prosody` / `prosodyctl` on PATH)
//   PROSODY_TMPDIR                where the private folder is made (default /tmp: Prosody, which
//                                 runs as the `prosody` user when we are root, must reach it)
//
// Exit codes: 0 ok, 1 failure, 2 Prosody is not installed, 3 (status) not running.

import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import {
  accessSync,
  chmodSync,
  chownSync,
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { connect, createServer } from 'node:net'
import { delimiter, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const STATE_DIR = join(ROOT, '.prosody')
const STATE_FILE = join(STATE_DIR, 'state.json')
const LOCK_DIR = join(STATE_DIR, 'lock')
const HOST = '127.0.0.1'
const DOMAIN = 'localhost'
/** A second virtual host whose accounts store SCRAM-SHA-256 keys (Prosody's `password_hash`). */
const SHA256_DOMAIN = 'sha256.localhost'
const COMPONENT_DOMAIN = 'echo.localhost'
/** Test accounts (on both hosts). Tests that count the server's SASL events use their own. */
const USERS = {
  alice: 'alice-pw-1',
  bob: 'bob-pw-2',
  carol: 'carol-pw-3',
  dave: 'dave-pw-4',
  erin: 'erin-pw-5',
  /** The WebSocket interop tests (apps/interop/test/websocket.test.ts). */
  walt: 'walt-pw-6',
}
/** Preferred ports; a busy one is replaced by a free one the OS picks. */
const PREFERRED_PORTS = {
  c2s: 15222,
  c2sDirectTls: 15223,
  http: 15280,
  https: 15281,
  component: 15347,
}
const READY_TIMEOUT_MS = 20_000
const STOP_TIMEOUT_MS = 10_000
/** The state of a server started by another version of this script is not reused. */
const SCRIPT_HASH = createHash('sha256')
  .update(readFileSync(fileURLToPath(import.meta.url)))
  .digest('hex')
  .slice(0, 16)

class NotInstalledError extends Error {}

// ---------------------------------------------------------------------------------------------
// Small helpers

function log(message) {
  process.stderr.write(`prosody: ${message}\n`)
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function isRoot() {
  return typeof process.getuid === 'function' && process.getuid() === 0
}

/** The absolute path of an executable: `name` itself when it has a slash, else found on PATH. */
function findExecutable(name) {
  const candidates = name.includes('/')
    ? [resolve(name)]
    : (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir || '.', name))
  for (const file of candidates) {
    try {
      accessSync(file, constants.X_OK)
      if (statSync(file).isFile()) return file
    } catch {
      // not here; try the next candidate
    }
  }
  return undefined
}

function binaries() {
  const prosody = process.env.PROSODY_BIN || 'prosody'
  const prosodyctl =
    process.env.PROSODY_CTL_BIN ||
    (prosody.includes('/') ? join(dirname(prosody), 'prosodyctl') : 'prosodyctl')
  return { prosody, prosodyctl }
}

/** Both executables, or a NotInstalledError that says how to install them. */
function requireBinaries() {
  const names = binaries()
  const prosody = findExecutable(names.prosody)
  const prosodyctl = findExecutable(names.prosodyctl)
  if (prosody && prosodyctl) return { prosody, prosodyctl }
  const missing = [!prosody && names.prosody, !prosodyctl && names.prosodyctl].filter(Boolean)
  const custom = process.env.PROSODY_BIN || process.env.PROSODY_CTL_BIN
  throw new NotInstalledError(
    `Prosody is not installed: no executable ${missing.join(', ')}${custom ? ' (from PROSODY_BIN / PROSODY_CTL_BIN)' : ' on PATH'}. ` +
      'Install it as root with `node scripts/prosody.mjs install` (Debian: apt-get install prosody).',
  )
}

/** Prosody's version, from prosody.version beside its sources, else from `prosodyctl about`. */
function prosodyVersion({ prosody, prosodyctl }) {
  try {
    const source = readFileSync(prosody, 'utf8').slice(0, 4096)
    const dir = /CFG_SOURCEDIR\s*=\s*'([^']+)'/.exec(source)?.[1]
    if (dir) return readFileSync(join(dir, 'prosody.version'), 'utf8').trim()
  } catch {
    // not the usual layout; ask prosodyctl
  }
  const res = spawnSync(prosodyctl, ['about'], { encoding: 'utf8' })
  return /^Prosody (\S+)/m.exec(res.stdout ?? '')?.[1] ?? 'unknown'
}

/** uid/gid to run Prosody as: the `prosody` user when we are root (it refuses root), else us. */
function runAs() {
  if (!isRoot()) return {}
  const res = spawnSync('getent', ['passwd', 'prosody'], { encoding: 'utf8' })
  const fields = (res.stdout ?? '').trim().split(':')
  const uid = Number(fields[2])
  const gid = Number(fields[3])
  if (res.status !== 0 || !Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new Error('there is no `prosody` user (the Debian package creates it: reinstall it)')
  }
  return { uid, gid }
}

function chownTree(path, { uid, gid }) {
  if (uid === undefined || gid === undefined) return
  chownSync(path, uid, gid)
  if (statSync(path).isDirectory()) {
    for (const entry of readdirSync(path)) chownTree(join(path, entry), { uid, gid })
  }
}

function luaString(value) {
  return JSON.stringify(String(value)) // a JSON string of printable text is a valid Lua string
}

function isAlive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
  } catch (err) {
    if (err.code !== 'EPERM') return false
  }
  // A zombie (exited, not yet reaped by its new parent) answers signals but is gone.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return true // no /proc here: trust the signal
  }
}

/** True when `pid` is the Prosody we started with `configFile` (guards against a reused pid). */
function isOurProsody(pid, configFile) {
  if (!isAlive(pid)) return false
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(configFile)
  } catch {
    return true // no /proc: trust the pid
  }
}

function tail(file, lines = 40) {
  try {
    const text = readFileSync(file, 'utf8').trimEnd()
    return text === '' ? '(empty)' : text.split('\n').slice(-lines).join('\n')
  } catch {
    return `(no ${file})`
  }
}

// ---------------------------------------------------------------------------------------------
// State and lock

function readState() {
  try {
    return JSON.parse(readFileSync(STATE_FILE, 'utf8'))
  } catch {
    return undefined
  }
}

function writeState(state) {
  mkdirSync(STATE_DIR, { recursive: true })
  const tmp = `${STATE_FILE}.${process.pid}.tmp`
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`)
  renameSync(tmp, STATE_FILE)
}

/** One start/stop at a time: a lock folder, taken over when its holder is gone. */
async function withLock(fn) {
  mkdirSync(STATE_DIR, { recursive: true })
  const deadline = Date.now() + 60_000
  for (;;) {
    try {
      mkdirSync(LOCK_DIR)
      writeFileSync(join(LOCK_DIR, 'pid'), String(process.pid))
      break
    } catch (err) {
      if (err.code !== 'EEXIST') throw err
      let holder = Number.NaN
      try {
        holder = Number(readFileSync(join(LOCK_DIR, 'pid'), 'utf8'))
      } catch {
        // the holder is between mkdir and writing its pid
      }
      const age = Date.now() - statSync(LOCK_DIR, { throwIfNoEntry: false })?.mtimeMs
      if ((Number.isInteger(holder) && !isAlive(holder)) || age > 60_000) {
        rmSync(LOCK_DIR, { recursive: true, force: true })
        continue
      }
      if (Date.now() > deadline) throw new Error(`${LOCK_DIR} is held by process ${holder}`)
      await sleep(100)
    }
  }
  try {
    return await fn()
  } finally {
    rmSync(LOCK_DIR, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------------
// Network

function portIsFree(port) {
  return new Promise((resolvePort) => {
    const server = createServer()
    server.once('error', () => resolvePort(false))
    server.listen({ host: HOST, port, exclusive: true }, () =>
      server.close(() => resolvePort(true)),
    )
  })
}

function osPickedPort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen({ host: HOST, port: 0, exclusive: true }, () => {
      const { port } = server.address()
      server.close(() => resolvePort(port))
    })
  })
}

async function pickPorts() {
  const ports = {}
  const taken = new Set()
  for (const [name, preferred] of Object.entries(PREFERRED_PORTS)) {
    let port = preferred
    while (taken.has(port) || !(await portIsFree(port))) port = await osPickedPort()
    taken.add(port)
    ports[name] = port
  }
  return ports
}

/**
 * Opens a client stream to the c2s port and reads the server's stream header and features
 * (RFC 6120 §4.2, §4.3.2). Resolves with the text read, rejects on error or after `timeoutMs`.
 */
export function probeC2S(port, { domain = DOMAIN, timeoutMs = 2000 } = {}) {
  return new Promise((resolveProbe, reject) => {
    let text = ''
    const socket = connect({ host: HOST, port })
    const timer = setTimeout(
      () => finish(new Error(`no stream features within ${timeoutMs} ms`)),
      timeoutMs,
    )
    function finish(err) {
      clearTimeout(timer)
      socket.destroy()
      if (err) reject(err)
      else resolveProbe(text)
    }
    socket.setEncoding('utf8')
    socket.on('connect', () =>
      socket.write(
        `<?xml version='1.0'?><stream:stream to='${domain}' version='1.0' xml:lang='en' ` +
          `xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`,
      ),
    )
    socket.on('data', (chunk) => {
      text += chunk
      if (/<\/stream:features>|<stream:features\s*\/>/.test(text)) {
        socket.end('</stream:stream>')
        finish()
      }
    })
    socket.on('error', (err) => finish(err))
    socket.on('close', () => finish(new Error(`connection closed after: ${text.slice(0, 200)}`)))
  })
}

async function isHealthy(state) {
  if (!state || !isOurProsody(state.pid, state.configFile)) return false
  try {
    const features = await probeC2S(state.ports.c2s)
    return features.includes('urn:ietf:params:xml:ns:xmpp-tls')
  } catch {
    return false
  }
}

// ---------------------------------------------------------------------------------------------
// Files

function writeCertificate(dir) {
  mkdirSync(join(dir, 'certs'))
  const cert = join(dir, 'certs', `${DOMAIN}.crt`)
  const key = join(dir, 'certs', `${DOMAIN}.key`)
  const openssl = findExecutable('openssl')
  if (!openssl) throw new Error('openssl is not installed (Debian: apt-get install openssl)')
  // Self-signed, 100 years; SANs for every host Prosody serves here and the loopback address.
  const res = spawnSync(
    openssl,
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '36500',
      '-subj',
      `/CN=${DOMAIN}`,
      '-addext',
      `subjectAltName=DNS:${DOMAIN},DNS:*.${DOMAIN},IP:${HOST}`,
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { encoding: 'utf8' },
  )
  if (res.status !== 0) throw new Error(`openssl failed: ${res.stderr || res.error?.message}`)
  chmodSync(key, 0o600)
  chmodSync(cert, 0o644)
  return { cert, key }
}

/**
 * A tiny module that writes one log line per SASL outcome, so the tests can count the
 * authentication attempts the server really saw.
 */
const AUDIT_MODULE = `-- Generated by scripts/prosody.mjs: one log line per SASL outcome, for the interop tests.
local function user_of(event)
  local handler = event.session and event.session.sasl_handler
  return handler and handler.username or "?"
end
module:hook("authentication-failure", function(event)
  module:log("info", "interop-audit auth-failure host=%s user=%s condition=%s",
    module.host, user_of(event), tostring(event.condition))
end)
module:hook("authentication-success", function(event)
  module:log("info", "interop-audit auth-success host=%s user=%s",
    module.host, tostring(event.session and event.session.username))
end)
`

function configText({ dir, ports, cert, key, componentSecret }) {
  const path = (name) => luaString(join(dir, name))
  return `-- Generated by scripts/prosody.mjs for the interop tests; removed by \`stop\`.
-- Runs in the foreground (prosody -F).
pidfile = ${path('prosody.pid')}
data_path = ${path('data')}
plugin_paths = { ${path('plugins')} }
log = {
  { levels = { min = "debug" }, to = "file", filename = ${path('prosody.log')} };
}

-- Loopback only, non-default ports.
interfaces = { "${HOST}" }
local_interfaces = { "${HOST}" }
c2s_ports = { ${ports.c2s} }
c2s_direct_tls_ports = { ${ports.c2sDirectTls} }
http_ports = { ${ports.http} }
https_ports = { ${ports.https} }
component_ports = { ${ports.component} }
s2s_ports = { }
http_default_host = "${DOMAIN}"
-- Without this, every TLS login stalls ~40 ms on Nagle's algorithm.
network_settings = { nagle = false }
use_libevent = false

certificates = ${path('certs')}
ssl = { certificate = ${luaString(cert)}; key = ${luaString(key)} }
c2s_require_encryption = true
authentication = "internal_hashed"
storage = "internal"
allow_registration = true

modules_enabled = {
  "roster"; "saslauth"; "tls"; "disco"; "ping"; "register"; "smacks"; "websocket";
  "carbons"; "blocklist"; "version"; "time"; "uptime"; "interop_audit";
}
modules_disabled = { "s2s"; "s2s_auth_certs" }

-- XMPP over WebSocket (RFC 7395) at websocketUrl: the plain ws:// endpoint is on loopback
-- only, so it counts as secure (without this, c2s_require_encryption refuses to log in there).
consider_websocket_secure = true

-- Stream management (XEP-0198): sessions stay resumable for 5 s only.
smacks_hibernation_time = 5

VirtualHost "${DOMAIN}"

VirtualHost "${SHA256_DOMAIN}"
  password_hash = "SHA-256"

Component "${COMPONENT_DOMAIN}"
  component_secret = ${luaString(componentSecret)}
`
}

function run(command, args, options) {
  return new Promise((resolveRun) => {
    let output = ''
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.on('data', (d) => {
      output += d
    })
    child.stderr.on('data', (d) => {
      output += d
    })
    child.on('error', (err) => resolveRun({ code: -1, output: `${output}${err.message}` }))
    child.on('close', (code) => resolveRun({ code, output }))
  })
}

// ---------------------------------------------------------------------------------------------
// Commands

async function install() {
  const names = binaries()
  if (findExecutable(names.prosody) && findExecutable(names.prosodyctl)) {
    const bins = requireBinaries()
    log(`Prosody ${prosodyVersion(bins)} is installed (${bins.prosody})`)
    return 0
  }
  if (process.env.PROSODY_BIN || process.env.PROSODY_CTL_BIN) requireBinaries() // throws: says which
  if (!isRoot()) {
    throw new NotInstalledError(
      'Prosody is not installed and this is not root: run `sudo apt-get install prosody` ' +
        '(or this command as root).',
    )
  }
  if (!findExecutable('apt-get')) {
    throw new NotInstalledError('Prosody is not installed and there is no apt-get here.')
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  for (const args of [['update'], ['install', '-y', '--no-install-recommends', 'prosody']]) {
    log(`apt-get ${args.join(' ')}`)
    const res = spawnSync('apt-get', args, { stdio: 'inherit', env })
    if (res.status !== 0) throw new Error(`apt-get ${args[0]} failed (exit ${res.status})`)
  }
  const bins = requireBinaries()
  log(`installed Prosody ${prosodyVersion(bins)}`)
  return 0
}

async function start({ json, owner }) {
  const bins = requireBinaries()
  return withLock(async () => {
    const previous = readState()
    if (previous?.scriptHash === SCRIPT_HASH && (await isHealthy(previous))) {
      log(`already running: pid ${previous.pid}, c2s ${HOST}:${previous.ports.c2s}`)
      if (json) console.log(JSON.stringify({ ...previous, reused: true }))
      return 0
    }
    if (previous) {
      log('a previous instance is stale or from another script version: stopping it')
      await stopFromState(previous)
    }
    const state = await startFresh(bins, owner)
    log(
      `Prosody ${state.version} running: pid ${state.pid}, c2s ${HOST}:${state.ports.c2s}, ` +
        `direct TLS ${state.ports.c2sDirectTls}, http ${state.ports.http}, ` +
        `component ${state.ports.component}, in ${state.dir} (ready in ${state.readyMs} ms)`,
    )
    if (json) console.log(JSON.stringify({ ...state, reused: false }))
    return 0
  })
}

async function startFresh(bins, owner) {
  const startedAt = Date.now()
  const account = runAs()
  const tmpRoot = process.env.PROSODY_TMPDIR || '/tmp'
  const dir = mkdtempSync(join(tmpRoot, 'prosody-interop-'))
  let child
  const cleanups = []
  try {
    // Interrupted before the state is written: nothing would know to stop it, so stop it now.
    const onSignal = (signal) => {
      try {
        if (child?.pid) process.kill(-child.pid, 'SIGKILL')
      } catch {
        // not started or already gone
      }
      rmSync(dir, { recursive: true, force: true })
      rmSync(LOCK_DIR, { recursive: true, force: true })
      process.exit(signal === 'SIGINT' ? 130 : 143)
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    cleanups.push(() => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    })
    for (const sub of ['data', 'plugins']) mkdirSync(join(dir, sub))
    const ports = await pickPorts()
    const { cert, key } = writeCertificate(dir)
    const componentSecret = randomBytes(16).toString('hex')
    const configFile = join(dir, 'prosody.cfg.lua')
    const logFile = join(dir, 'prosody.log')
    const consoleFile = join(dir, 'console.log')
    writeFileSync(configFile, configText({ dir, ports, cert, key, componentSecret }))
    writeFileSync(join(dir, 'plugins', 'mod_interop_audit.lua'), AUDIT_MODULE)
    chmodSync(dir, 0o755) // mkdtemp makes it 0700; others (tests) may read the log
    chownTree(dir, account)

    // Accounts, written straight to storage by prosodyctl (no server needed).
    const env = { ...process.env, HOME: dir }
    const registrations = []
    for (const domain of [DOMAIN, SHA256_DOMAIN]) {
      for (const [user, password] of Object.entries(USERS)) {
        registrations.push(
          run(bins.prosodyctl, ['--config', configFile, 'register', user, domain, password], {
            ...account,
            env,
            cwd: dir,
          }).then((res) => {
            if (res.code !== 0) {
              throw new Error(`prosodyctl register ${user} ${domain} failed:\n${res.output}`)
            }
          }),
        )
      }
    }
    const failed = (await Promise.allSettled(registrations)).find((r) => r.status === 'rejected')
    if (failed) throw failed.reason

    const consoleFd = openSync(consoleFile, 'a')
    let exited
    try {
      // A new process group (detached), so stop can signal everything Prosody started.
      child = spawn(bins.prosody, ['-F', '--config', configFile], {
        ...account,
        cwd: dir,
        env,
        detached: true,
        stdio: ['ignore', consoleFd, consoleFd],
      })
    } finally {
      closeSync(consoleFd)
    }
    child.on('exit', (code, signal) => {
      exited = signal ? `killed by ${signal}` : `exited with code ${code}`
    })
    child.on('error', (err) => {
      exited = `could not start: ${err.message}`
    })
    child.unref()

    const deadline = Date.now() + READY_TIMEOUT_MS
    for (;;) {
      if (exited) throw new Error(`Prosody ${exited}`)
      try {
        const features = await probeC2S(ports.c2s, { timeoutMs: 1000 })
        if (features.includes('urn:ietf:params:xml:ns:xmpp-tls')) break
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        throw new Error(
          `Prosody did not answer on ${HOST}:${ports.c2s} within ${READY_TIMEOUT_MS} ms`,
        )
      }
      await sleep(50)
    }

    const state = {
      scriptHash: SCRIPT_HASH,
      owner,
      version: prosodyVersion(bins),
      pid: child.pid,
      dir,
      configFile,
      logFile,
      consoleFile,
      host: HOST,
      domain: DOMAIN,
      sha256Domain: SHA256_DOMAIN,
      ports,
      websocketUrl: `ws://${HOST}:${ports.http}/xmpp-websocket`,
      secureWebsocketUrl: `wss://${HOST}:${ports.https}/xmpp-websocket`,
      users: USERS,
      component: { domain: COMPONENT_DOMAIN, secret: componentSecret, port: ports.component },
      certFile: cert,
      smacksHibernationTime: 5,
      startedAt: new Date(startedAt).toISOString(),
      readyMs: Date.now() - startedAt,
    }
    writeState(state)
    for (const cleanup of cleanups) cleanup()
    return state
  } catch (err) {
    for (const cleanup of cleanups) cleanup()
    const logs = `--- ${join(dir, 'prosody.log')} (tail) ---\n${tail(join(dir, 'prosody.log'))}\n--- ${join(dir, 'console.log')} (tail) ---\n${tail(join(dir, 'console.log'))}`
    if (child?.pid) await killGroup(child.pid)
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`${err.message}\n${logs}`)
  }
}

/** SIGTERM to the process group, SIGKILL when it lingers. Resolves when `pid` is gone. */
async function killGroup(pid) {
  const signal = (sig) => {
    try {
      process.kill(-pid, sig) // the group: Prosody and anything it started
    } catch {
      try {
        process.kill(pid, sig)
      } catch {
        // already gone
      }
    }
  }
  signal('SIGTERM')
  const deadline = Date.now() + STOP_TIMEOUT_MS
  while (isAlive(pid) && Date.now() < deadline) await sleep(50)
  if (isAlive(pid)) {
    log(`pid ${pid} ignored SIGTERM for ${STOP_TIMEOUT_MS} ms: SIGKILL`)
    signal('SIGKILL')
    const killDeadline = Date.now() + 5000
    while (isAlive(pid) && Date.now() < killDeadline) await sleep(50)
  }
  if (isAlive(pid)) throw new Error(`could not stop process ${pid}`)
}

async function stopFromState(state) {
  if (isOurProsody(state.pid, state.configFile)) {
    await killGroup(state.pid)
    log(`stopped pid ${state.pid}`)
  } else if (isAlive(state.pid)) {
    log(`pid ${state.pid} is not the Prosody we started; leaving it alone`)
  } else {
    log(`pid ${state.pid} was not running`)
  }
  if (typeof state.dir === 'string' && /\/prosody-interop-[^/]+$/.test(state.dir)) {
    rmSync(state.dir, { recursive: true, force: true })
  }
  rmSync(STATE_FILE, { force: true })
}

async function stop() {
  return withLock(async () => {
    const state = readState()
    if (!state) {
      log('not running (no .prosody/state.json)')
      return 0
    }
    await stopFromState(state)
    return 0
  })
}

async function status({ json }) {
  const state = readState()
  const running = await isHealthy(state)
  if (json) console.log(JSON.stringify({ running, ...(state ?? {}) }))
  if (!state) log('not running (no .prosody/state.json)')
  else if (running) {
    log(
      `running: Prosody ${state.version}, pid ${state.pid}, c2s ${HOST}:${state.ports.c2s}, ` +
        `direct TLS ${state.ports.c2sDirectTls}, http ${state.ports.http}, ` +
        `https ${state.ports.https}, component ${state.ports.component}, folder ${state.dir}`,
    )
  } else log(`not running (stale state: pid ${state.pid}; \`stop\` cleans up)`)
  return running ? 0 : 3
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const [command, ...rest] = process.argv.slice(2)
  const options = { json: false, owner: 'manual' }
  const unknown = []
  for (const arg of rest) {
    if (arg === '--json') options.json = true
    else if (arg.startsWith('--owner=') && command === 'start') options.owner = arg.slice(8)
    else unknown.push(arg)
  }
  const commands = { install, start, stop, status }
  if (!command || !Object.hasOwn(commands, command) || unknown.length > 0) {
    log(
      'usage: node scripts/prosody.mjs install | start [--json] [--owner=NAME] | status [--json] | stop',
    )
    return 1
  }
  try {
    return await commands[command](options)
  } catch (err) {
    log(`${command} failed: ${err.message}`)
    return err instanceof NotInstalledError ? 2 : 1
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main()
}
