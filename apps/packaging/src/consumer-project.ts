// Builds a project as a user would have it: every public package packed with pnpm, the
// tarballs installed with npm into an empty folder outside the workspace. Offline: the
// third-party packages the tarballs need (ltx, @types/ltx, ...) are packed from the
// workspace's installed copies (the lockfile's versions), npm gets them through
// `overrides`, and its cache is a fresh folder, so nothing can come from a registry.
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join } from 'node:path'
import { run } from './commands.js'
import { type Manifest, publicPackages, ROOT } from './workspace.js'

export interface PackedPackage {
  name: string
  version: string
  /** Absolute path of the .tgz. */
  tarball: string
}

/** Packs every public workspace package into `dest` (pnpm rewrites workspace: ranges). */
export function packWorkspace(dest: string): PackedPackage[] {
  mkdirSync(dest, { recursive: true })
  const filters = publicPackages().flatMap((p) => ['--filter', p.manifest.name])
  const { stdout } = run('pnpm', ['-r', ...filters, 'pack', '--json', '--pack-destination', dest], {
    cwd: ROOT,
  })
  const packed = JSON.parse(stdout) as { name: string; version: string; filename: string }[]
  return packed.map((p) => ({
    name: p.name,
    version: p.version,
    tarball: p.filename.startsWith('/') ? p.filename : join(dest, p.filename),
  }))
}

/** The folder of package `name` as Node would find it from `fromDir` (real path). */
function findInstalled(name: string, fromDir: string): string {
  let dir = fromDir
  for (;;) {
    const candidate = join(dir, 'node_modules', name)
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate)
    const parent = dirname(dir)
    if (parent === dir) throw new Error(`${name} is not installed where ${fromDir} can see it`)
    dir = parent
  }
}

/**
 * Packs, with npm, the third-party packages `roots` need (and theirs, transitively), from
 * the copies pnpm installed in the workspace. `roots` maps a package name to the folder it
 * is needed from.
 */
export function packThirdParty(roots: [name: string, fromDir: string][], dest: string) {
  const found = new Map<string, string>() // name -> real folder
  const queue = [...roots]
  while (queue.length > 0) {
    const [name, from] = queue.shift() as [string, string]
    if (found.has(name)) continue
    const dir = findInstalled(name, from)
    found.set(name, dir)
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest
    for (const dep of Object.keys(manifest.dependencies ?? {})) queue.push([dep, dir])
  }
  mkdirSync(dest, { recursive: true })
  const { stdout } = run(
    'npm',
    ['pack', '--json', '--ignore-scripts', '--pack-destination', dest, ...found.values()],
    { cwd: dest, env: { npm_config_update_notifier: 'false' } },
  )
  const packed = JSON.parse(stdout) as { name: string; version: string; filename: string }[]
  return packed.map((p) => ({ name: p.name, version: p.version, tarball: join(dest, p.filename) }))
}

export interface ConsumerProject {
  dir: string
  packed: PackedPackage[]
  thirdParty: PackedPackage[]
}

/**
 * An empty project in `dir` that depends on `direct` (names of workspace packages, plus
 * @types/node as a TypeScript user has it), installed with npm, offline.
 */
export function createConsumerProject(dir: string, direct: readonly string[]): ConsumerProject {
  const packed = packWorkspace(join(dir, 'tarballs'))
  const ours = new Set(packed.map((p) => p.name))
  const roots: [string, string][] = [['@types/node', ROOT]]
  for (const pkg of publicPackages()) {
    for (const dep of Object.keys(pkg.manifest.dependencies ?? {})) {
      if (!ours.has(dep)) roots.push([dep, join(ROOT, pkg.dir)])
    }
  }
  const thirdParty = packThirdParty(roots, join(dir, 'third-party'))
  const spec = (p: PackedPackage) => `file:${p.tarball}`
  const all = [...packed, ...thirdParty]
  const byName = new Map(all.map((p) => [p.name, p]))
  const dependencies: Record<string, string> = {}
  for (const name of [...direct, '@types/node']) {
    const p = byName.get(name)
    if (!p) throw new Error(`${name} was not packed`)
    dependencies[name] = spec(p)
  }
  const manifest = {
    name: 'consumer',
    private: true,
    type: 'module',
    dependencies,
    // Whatever asks for one of these (a dependency, a peer) gets the local tarball.
    overrides: Object.fromEntries(all.map((p) => [p.name, spec(p)])),
  }
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--cache', join(dir, '.npm')], {
    cwd: dir,
    env: { npm_config_update_notifier: 'false' },
  })
  return { dir, packed, thirdParty }
}

/** Every installed copy of `name` under `dir`/node_modules (nested ones included). */
export function installedCopies(dir: string, name: string): string[] {
  const out: string[] = []
  const visit = (nodeModules: string) => {
    if (!existsSync(nodeModules)) return
    if (existsSync(join(nodeModules, name, 'package.json'))) out.push(join(nodeModules, name))
    for (const entry of readdirSync(nodeModules)) {
      if (entry.startsWith('.')) continue
      const scoped = entry.startsWith('@')
      const children = scoped
        ? readdirSync(join(nodeModules, entry)).map((c) => `${entry}/${c}`)
        : [entry]
      for (const child of children) visit(join(nodeModules, child, 'node_modules'))
    }
  }
  visit(join(dir, 'node_modules'))
  return out
}
