// The workspace's publishable packages, read from disk: packages/<scope>/<name>/, each
// with its manifest and the text of its source files (for the import rules).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)))

export interface Manifest {
  name: string
  version: string
  private?: boolean
  dependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  devDependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  [key: string]: unknown
}

export interface SourceFile {
  /** Relative to the package folder, with forward slashes. */
  path: string
  text: string
}

export interface PackageInfo {
  /** Relative to the repository root: packages/<scope>/<name>. */
  dir: string
  manifest: Manifest
  sources: SourceFile[]
  hasReadme: boolean
  /**
   * Packages its tests reach by path (`compilerOptions.paths` of its tsconfig.json): a
   * package they need that depends on this one, so that it cannot be a dependency.
   */
  testPaths?: string[]
}

function testPathsOf(dir: string): string[] {
  const file = join(dir, 'tsconfig.json')
  if (!existsSync(file)) return []
  const config = JSON.parse(readFileSync(file, 'utf8')) as {
    compilerOptions?: { paths?: Record<string, string[]> }
  }
  return Object.keys(config.compilerOptions?.paths ?? {})
}

const SOURCE_FILE = /\.(ts|mts|cts|js|mjs|cjs)$/
const SKIPPED_DIRS = new Set(['node_modules', 'dist', '.turbo'])

function listSources(dir: string, base = dir): SourceFile[] {
  const out: SourceFile[] = []
  for (const entry of readdirSync(dir).sort()) {
    if (SKIPPED_DIRS.has(entry) || entry.startsWith('.')) continue
    const path = join(dir, entry)
    if (statSync(path).isDirectory()) out.push(...listSources(path, base))
    else if (SOURCE_FILE.test(entry) && !entry.endsWith('.d.ts')) {
      out.push({
        path: relative(base, path).split('\\').join('/'),
        text: readFileSync(path, 'utf8'),
      })
    }
  }
  return out
}

/** Every package under packages/<scope>/<name>/ (private ones included), sorted by folder. */
export function readWorkspacePackages(root = ROOT): PackageInfo[] {
  const out: PackageInfo[] = []
  const packagesDir = join(root, 'packages')
  for (const scope of readdirSync(packagesDir).sort()) {
    if (!statSync(join(packagesDir, scope)).isDirectory()) continue
    for (const name of readdirSync(join(packagesDir, scope)).sort()) {
      const dir = join(packagesDir, scope, name)
      const manifestPath = join(dir, 'package.json')
      if (!existsSync(manifestPath)) continue
      out.push({
        dir: relative(root, dir).split('\\').join('/'),
        manifest: JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest,
        sources: listSources(dir),
        hasReadme: existsSync(join(dir, 'README.md')),
        testPaths: testPathsOf(dir),
      })
    }
  }
  return out
}

/** The packages a user can install: not private. */
export function publicPackages(root = ROOT): PackageInfo[] {
  return readWorkspacePackages(root).filter((p) => p.manifest.private !== true)
}
