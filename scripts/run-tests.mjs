#!/usr/bin/env node
// Runs every workspace package's `test` task through turbo, then checks that the run was
// complete: each test file in the repo ran at least one test, and each package with a `test`
// script wrote its vitest JSON report. Prints a per-package summary and, as the very last
// line, `N passed, N failed[, N skipped]`. Totals also go to .test-reports/totals-node<major>.json
// for .ci/run to add up.
//
//   node scripts/run-tests.mjs           all packages
//   node scripts/run-tests.mjs --unit    skip packages whose package.json has "testScope":
//                                        "interop" or "bench"
//                                        (they need a real XMPP server)
//
// Exit code is non-zero when turbo failed, a test failed, a test file never ran, or a package
// wrote no report. Node built-ins only.

import { spawnSync } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const REPORT_NAME = '.vitest-report.json'
const TEST_FILE = /\.(test|spec)\.[cm]?[jt]sx?$/
const IGNORED_DIRS = new Set(['node_modules', 'dist', '.git', '.turbo'])
// Packages skipped by --unit: Prosody interop, and the bench smoke (ratios against xmpp.js,
// measured once per CI run, on Node 20).
const NOT_UNIT_SCOPES = new Set(['interop', 'bench'])

const args = process.argv.slice(2)
const unknown = args.filter((a) => a !== '--unit')
if (unknown.length > 0) {
  console.error(
    `run-tests: unknown argument(s): ${unknown.join(' ')} (usage: run-tests.mjs [--unit])`,
  )
  process.exit(2)
}
const unitOnly = args.includes('--unit')

/** Absolute, symlink-free path, so paths from git and from vitest compare equal. */
function canonical(path) {
  try {
    return realpathSync(path)
  } catch {
    return resolve(path)
  }
}

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'))
}

/** True when `file` is `dir` itself or lies inside it (both canonical). */
function isInside(file, dir) {
  return file === dir || file.startsWith(dir + sep)
}

/** Workspace packages (root excluded), as pnpm sees them. */
function listWorkspacePackages() {
  const res = spawnSync('pnpm', ['ls', '-r', '--depth', '-1', '--json'], {
    cwd: ROOT,
    encoding: 'utf8',
  })
  if (res.error || res.status !== 0) {
    throw new Error(`\`pnpm ls -r\` failed: ${res.error?.message ?? res.stderr}`)
  }
  const root = canonical(ROOT)
  return JSON.parse(res.stdout)
    .map((entry) => ({ dir: canonical(entry.path) }))
    .filter(({ dir }) => dir !== root)
    .map(({ dir }) => {
      const manifest = readJson(join(dir, 'package.json'))
      return {
        name: manifest.name ?? relative(root, dir),
        dir,
        hasTest: typeof manifest.scripts?.test === 'string',
        interop: NOT_UNIT_SCOPES.has(manifest.testScope),
      }
    })
    .sort((a, b) => a.name.localeCompare(b.name))
}

/** Test files git knows about (tracked, or untracked and not ignored); a file walk without git. */
function listTestFiles() {
  const res = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  })
  let files
  if (!res.error && res.status === 0) {
    files = res.stdout.split('\0').filter(Boolean)
  } else {
    console.warn('run-tests: `git ls-files` failed; looking for test files by walking the tree')
    files = walk(ROOT).map((f) => relative(ROOT, f))
  }
  return files
    .filter((f) => TEST_FILE.test(f))
    .filter((f) => !f.split('/').some((part) => IGNORED_DIRS.has(part)))
    .map((f) => join(ROOT, f))
    .filter((f) => existsSync(f)) // --cached lists files deleted from the work tree too
    .map(canonical)
    .sort()
}

function walk(dir) {
  const out = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (IGNORED_DIRS.has(entry.name) || entry.name.startsWith('.')) continue
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...walk(path))
    else if (entry.isFile()) out.push(path)
  }
  return out
}

function runTurbo(packages) {
  const excluded = unitOnly ? packages.filter((p) => p.interop) : []
  const turboArgs = [
    'exec',
    'turbo',
    'run',
    'test',
    // Packages' tests may use the same network ports: one task at a time.
    '--concurrency=1',
    // A failing package must not hide the results of the others.
    '--continue=always',
    '--output-logs=new-only',
    '--log-order=stream',
    '--ui=stream',
    ...excluded.map((p) => `--filter=!${p.name}`),
  ]
  if (excluded.length > 0) {
    console.log(
      `run-tests: --unit: skipping interop packages: ${excluded.map((p) => p.name).join(', ')}`,
    )
  }
  console.log(`run-tests: pnpm ${turboArgs.join(' ')}`)
  const res = spawnSync('pnpm', turboArgs, {
    cwd: ROOT,
    stdio: 'inherit',
    env: { TURBO_TELEMETRY_DISABLED: '1', ...process.env },
  })
  if (res.error) {
    console.error(`run-tests: could not start turbo: ${res.error.message}`)
    return 1
  }
  return res.status ?? 1
}

/** Tally one vitest JSON report. */
function tallyReport(report) {
  const tally = { passed: 0, failed: 0, skipped: 0, files: new Map(), fileErrors: [] }
  for (const file of report.testResults ?? []) {
    const name = canonical(file.name)
    let ran = 0
    for (const assertion of file.assertionResults ?? []) {
      if (assertion.status === 'passed') tally.passed++
      else if (assertion.status === 'failed') tally.failed++
      else tally.skipped++ // skipped, pending, todo, disabled
      if (assertion.status === 'passed' || assertion.status === 'failed') ran++
    }
    tally.files.set(name, (tally.files.get(name) ?? 0) + ran)
    // A file that failed to load (syntax error, bad import, failing hook) has no test results.
    if (file.status === 'failed' && ran === 0) {
      tally.fileErrors.push({ name, message: firstLine(file.message) })
    }
  }
  return tally
}

function firstLine(text) {
  return typeof text === 'string' && text.trim() !== '' ? text.trim().split('\n')[0] : undefined
}

function nodeLabel() {
  return `node${process.versions.node.split('.')[0]}`
}

function main() {
  const rootDir = canonical(ROOT)
  const packages = listWorkspacePackages()

  // 1. No stale report may pass for this run's.
  for (const pkg of packages) rmSync(join(pkg.dir, REPORT_NAME), { force: true })

  // 2. Run the tests.
  const turboStatus = runTurbo(packages)

  // 3. Collect the reports.
  const problems = []
  const ranFiles = new Map() // canonical file path -> number of tests that passed or failed
  const loadErrors = new Map() // canonical file path -> why it failed before running a test
  const totals = { passed: 0, failed: 0, skipped: 0 }
  const summaryLines = []
  for (const pkg of packages) {
    if (unitOnly && pkg.interop) {
      summaryLines.push(`  skip ${pkg.name}: interop tests, not run with --unit`)
      continue
    }
    const reportPath = join(pkg.dir, REPORT_NAME)
    if (!existsSync(reportPath)) {
      if (pkg.hasTest) {
        problems.push(
          `package ${pkg.name} has a test script but wrote no ${REPORT_NAME} (did vitest crash before reporting? see its log above)`,
        )
        summaryLines.push(`  FAIL ${pkg.name}: no report`)
      }
      continue
    }
    let report
    try {
      report = readJson(reportPath)
    } catch (err) {
      problems.push(`package ${pkg.name}: unreadable ${REPORT_NAME}: ${err.message}`)
      summaryLines.push(`  FAIL ${pkg.name}: unreadable report`)
      continue
    }
    const tally = tallyReport(report)
    totals.passed += tally.passed
    totals.failed += tally.failed
    totals.skipped += tally.skipped
    for (const [file, ran] of tally.files) ranFiles.set(file, (ranFiles.get(file) ?? 0) + ran)
    for (const { name, message } of tally.fileErrors) loadErrors.set(name, message)
    if (tally.files.size === 0) {
      problems.push(`package ${pkg.name}: vitest found no test file to run (see its log above)`)
    } else if (report.success === false && tally.failed === 0 && tally.fileErrors.length === 0) {
      problems.push(
        `package ${pkg.name}: vitest reported errors outside of tests (see its log above)`,
      )
    }
    const mark = tally.failed > 0 || report.success === false ? 'FAIL' : 'ok  '
    summaryLines.push(
      `  ${mark} ${pkg.name}: passed ${tally.passed}, failed ${tally.failed}, skipped ${tally.skipped} in ${tally.files.size} file(s)`,
    )
  }

  // 4. Every test file in the repo must have run at least one test.
  const exempt = unitOnly ? packages.filter((p) => p.interop).map((p) => p.dir) : []
  for (const file of listTestFiles()) {
    if (exempt.some((dir) => isInside(file, dir))) continue
    if ((ranFiles.get(file) ?? 0) > 0) continue
    const rel = relative(rootDir, file)
    const why = loadErrors.has(file)
      ? `it failed before running any test: ${loadErrors.get(file) ?? 'see the log above'}`
      : ranFiles.has(file)
        ? 'every test in it was skipped or todo'
        : 'no vitest report lists it (outside the package `include` pattern, or in no package with a test script?)'
    problems.push(`test file never ran: ${rel} - ${why}`)
  }

  if (turboStatus !== 0) {
    problems.push(`turbo exited with status ${turboStatus} (see the log above)`)
  }
  if (totals.passed + totals.failed === 0) problems.push('no test ran at all')

  // 5. Totals for .ci/run.
  const label = nodeLabel()
  const ok = problems.length === 0 && totals.failed === 0
  mkdirSync(join(ROOT, '.test-reports'), { recursive: true })
  writeFileSync(
    join(ROOT, '.test-reports', `totals-${label}.json`),
    `${JSON.stringify({ ...totals, node: process.version, mode: unitOnly ? 'unit' : 'all', ok }, null, 2)}\n`,
  )

  // 6. Report. The last line is the totals line, nothing after it.
  console.log('')
  console.log(`Test summary (${process.version}${unitOnly ? ', --unit' : ''}):`)
  for (const line of summaryLines) console.log(line)
  if (summaryLines.length === 0) console.log('  (no package has a test script)')
  if (problems.length > 0) {
    console.log('')
    for (const problem of problems) console.log(`ERROR: ${problem}`)
  }
  if (totals.failed > 0) console.log(`ERROR: ${totals.failed} test(s) failed (see the log above)`)
  console.log('')
  const skipped = totals.skipped > 0 ? `, ${totals.skipped} skipped` : ''
  console.log(`${totals.passed} passed, ${totals.failed} failed${skipped}`)
  return ok ? 0 : 1
}

try {
  process.exitCode = main()
} catch (err) {
  console.error(`run-tests: ${err?.stack ?? err}`)
  process.exitCode = 1
}
