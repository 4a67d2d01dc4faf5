#!/usr/bin/env node
// Long runs of the reader's differential test (src/stream-parser.fuzz.test.ts) with random
// seeds. Each job runs vitest on that file with FUZZ_SECONDS and its own FUZZ_SEED; the seed of
// every failing document is printed with the command that replays it.
//
//   node scripts/fuzz-reader.mjs [--seconds 300] [--jobs 2] [--seed N]
//
// From packages/core/connection. Exit code 1 when any document failed.

import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const TEST_FILE = 'src/stream-parser.fuzz.test.ts'

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`)
  if (at === -1) return fallback
  const value = Number(process.argv[at + 1])
  if (!Number.isInteger(value) || value < 0) {
    console.error(`fuzz-reader: --${name} needs a non-negative integer`)
    process.exit(2)
  }
  return value
}

const seconds = option('seconds', 300)
const jobs = option('jobs', 1)
const firstSeed = option('seed', Math.floor(Math.random() * 2 ** 32))
const scratch = mkdtempSync(join(tmpdir(), 'fuzz-reader-'))

function runJob(k) {
  const seed = (firstSeed + k * 0x2545f491) >>> 0
  const reportPath = join(scratch, `job-${k}.json`)
  return new Promise((done) => {
    const child = spawn('pnpm', ['exec', 'vitest', 'run', TEST_FILE, '--reporter=dot'], {
      cwd: PACKAGE_DIR,
      env: {
        ...process.env,
        FUZZ_SECONDS: String(seconds),
        FUZZ_SEED: String(seed),
        FUZZ_REPORT: reportPath,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    })
    child.on('close', (code) => {
      let report
      try {
        report = JSON.parse(readFileSync(reportPath, 'utf8'))
      } catch {
        report = undefined
      }
      done({ seed, code, report })
    })
  })
}

console.log(`fuzz-reader: ${jobs} job(s) of ${seconds} s from seed ${firstSeed}`)
const results = await Promise.all(Array.from({ length: Math.max(jobs, 1) }, (_, k) => runJob(k)))
rmSync(scratch, { recursive: true, force: true })

let documents = 0
let failed = false
for (const { seed, code, report } of results) {
  if (report === undefined) {
    console.log(`seed ${seed}: the test run ended (exit code ${code}) without a report`)
    failed = true
    continue
  }
  documents += report.tally.documents
  console.log(report.text)
  for (const f of report.findings) {
    failed = true
    console.log(
      `FAILED document seed ${f.seed} (${f.kind}); replay: FUZZ_DOC_SEED=${f.seed} pnpm exec vitest run ${TEST_FILE}`,
    )
  }
}
console.log(
  `fuzz-reader: ${documents} documents, ${failed ? 'FAILURES (seeds above)' : 'no failure'}`,
)
process.exit(failed ? 1 : 0)
