// A release dry run on a scratch copy of the repository: `changeset version` applies the
// pending changesets, then `pnpm publish -r --dry-run` and `pnpm pack` show what would be
// published. Nothing leaves the machine: the registry is an unreachable local address
// and --force skips pnpm's "already published?" lookup.
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { readFromTarball, run } from '../src/commands.js'
import { checkPackedManifest, checkPublishedFiles } from '../src/release-checks.js'
import { type Manifest, publicPackages, ROOT } from '../src/workspace.js'

const NOWHERE = 'http://127.0.0.1:9/'

interface Published {
  name: string
  version: string
  files: { path: string }[]
}

let scratch: string
const before = new Map(publicPackages().map((p) => [p.manifest.name, p.manifest.version]))
const dirs = new Map(publicPackages().map((p) => [p.manifest.name, p.dir]))
let published: Published[] = []
let packed: { name: string; version: string; tarball: string }[] = []
let pending: string[] = []

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'xmpp-release-'))
  // The repository as git has it (tracked and new files), plus each package's build.
  for (const file of repositoryFiles()) {
    if (!existsSync(join(ROOT, file))) continue // deleted in the work tree
    mkdirSync(dirname(join(scratch, file)), { recursive: true })
    cpSync(join(ROOT, file), join(scratch, file))
  }
  for (const dir of dirs.values()) {
    if (existsSync(join(ROOT, dir, 'dist'))) {
      cpSync(join(ROOT, dir, 'dist'), join(scratch, dir, 'dist'), { recursive: true })
    }
  }
  pending = readdirSync(join(scratch, '.changeset')).filter(
    (f) => f.endsWith('.md') && f !== 'README.md',
  )
  const env = { npm_config_registry: NOWHERE, npm_config_update_notifier: 'false' }
  run('pnpm', ['install', '--offline', '--frozen-lockfile', '--ignore-scripts'], {
    cwd: scratch,
    env,
  })
  run(join(scratch, 'node_modules/.bin/changeset'), ['version'], { cwd: scratch, env })
  const filters = [...dirs.keys()].flatMap((n) => ['--filter', n])
  published = JSON.parse(
    run(
      'pnpm',
      ['-r', ...filters, 'publish', '--dry-run', '--json', '--no-git-checks', '--force'],
      { cwd: scratch, env },
    ).stdout,
  ) as Published[]
  const tarballs = join(scratch, '.tarballs')
  packed = (
    JSON.parse(
      run('pnpm', ['-r', ...filters, 'pack', '--json', '--pack-destination', tarballs], {
        cwd: scratch,
        env,
      }).stdout,
    ) as { name: string; version: string; filename: string }[]
  ).map((p) => ({
    ...p,
    tarball: p.filename.startsWith('/') ? p.filename : join(tarballs, p.filename),
  }))
  const plan = [...before].map(([name, old]) => {
    const next = published.find((p) => p.name === name)?.version ?? '?'
    return `  ${name} ${old}${next === old ? '' : ` -> ${next}`}`
  })
  console.log(`release plan from ${pending.length} pending changeset(s):\n${plan.join('\n')}`)
})

/** Files git knows about (tracked, or new and not ignored); without git, a walk of the tree. */
function repositoryFiles(): string[] {
  const git = run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: ROOT,
    allowFailure: true,
  })
  if (git.status === 0) return git.stdout.split('\0').filter(Boolean)
  const skipped = new Set(['node_modules', 'dist', '.git', '.turbo', '.test-reports', '.prosody'])
  const walk = (dir: string): string[] =>
    readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
      const path = dir === '' ? e.name : `${dir}/${e.name}`
      if (skipped.has(e.name) || path === '.ci/.cache') return []
      return e.isDirectory() ? walk(path) : e.isFile() ? [path] : []
    })
  return walk('')
}

afterAll(() => {
  if (scratch && process.env.TEST_KEEP_RELEASE === undefined) {
    rmSync(scratch, { recursive: true, force: true })
  }
})

describe('release dry run (changeset version, pnpm publish -r --dry-run)', () => {
  test('changeset version consumed every pending changeset', () => {
    const left = readdirSync(join(scratch, '.changeset')).filter(
      (f) => f.endsWith('.md') && f !== 'README.md',
    )
    expect(left).toEqual([])
  })

  test('every public package would be published', () => {
    expect(published.map((p) => p.name).sort()).toEqual([...before.keys()].sort())
  })

  test('each would publish its dist, its README and what its exports point to; no stale build file', () => {
    const problems = published.flatMap((p) => {
      const dir = dirs.get(p.name) as string
      const manifest = JSON.parse(
        readFileSync(join(scratch, dir, 'package.json'), 'utf8'),
      ) as Manifest
      return checkPublishedFiles(
        manifest,
        p.files.map((f) => f.path),
        (path) => existsSync(join(ROOT, dir, path)),
      )
    })
    expect(problems).toEqual([])
  })

  test('no workspace: range is left in a packed manifest, and internal ranges admit the versions released', () => {
    const released = new Map(packed.map((p) => [p.name, p.version]))
    const problems = packed.flatMap((p) =>
      checkPackedManifest(JSON.parse(readFromTarball(p.tarball, 'package.json')), released),
    )
    expect(problems).toEqual([])
    // the published ranges are what the rules promise: ^<version>
    const ping = packed.find((p) => p.name === '@xep/0199-ping')
    const manifest = JSON.parse(readFromTarball(ping?.tarball as string, 'package.json'))
    expect(manifest.peerDependencies['@core/connection']).toBe(
      `^${released.get('@core/connection')}`,
    )
  })
})
