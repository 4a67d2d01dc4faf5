// Starts the scripted bench server (server.mjs) in its own process, for every bench script.
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const SERVER = join(dirname(fileURLToPath(import.meta.url)), 'server.mjs')

/**
 * Starts server.mjs with `args` (`--mode`, `--n`, ...) and resolves once it listens, with its
 * port and `stop()` (the server exits when its stdin closes). `wrap` may rewrite the command
 * line, e.g. to pin the process to a core with taskset.
 */
export function startBenchServer(args, wrap = (argv) => argv) {
  const [cmd, ...argv] = wrap([process.execPath, SERVER, ...args])
  const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    let text = ''
    child.on('error', reject)
    child.on('exit', (code) => reject(new Error(`the server exited (${code}) before listening`)))
    child.stdout.on('data', (chunk) => {
      text += chunk
      if (!text.includes('\n')) return
      const { port } = JSON.parse(text.split('\n')[0])
      resolve({
        port,
        stop: () =>
          new Promise((done) => {
            child.removeAllListeners('exit')
            child.once('exit', done)
            child.stdin.end()
          }),
      })
    })
  })
}
