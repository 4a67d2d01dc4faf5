// What a release must not publish: a package without its build or its README, a manifest
// with a `workspace:` range left in it, an internal range that excludes the version it
// is released with, or build output whose source is gone.
import type { Manifest } from './workspace.js'

const DEPENDENCY_FIELDS = [
  'dependencies',
  'peerDependencies',
  'optionalDependencies',
  'devDependencies',
] as const

type Version = [major: number, minor: number, patch: number]

function parseVersion(text: string): Version | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(text)
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined
}

/**
 * Whether `version` is in the caret range `range` (^x.y.z: the same leftmost non-zero
 * part, not lower); undefined when `range` is not a caret range of a release version.
 */
export function inCaretRange(range: string, version: string): boolean | undefined {
  const base = range.startsWith('^') ? parseVersion(range.slice(1)) : undefined
  const v = parseVersion(version)
  if (!base || !v) return undefined
  const [major, minor, patch] = base
  const notLower =
    v[0] > major || (v[0] === major && (v[1] > minor || (v[1] === minor && v[2] >= patch)))
  if (major > 0) return v[0] === major && notLower
  if (minor > 0) return v[0] === 0 && v[1] === minor && notLower
  return v[0] === 0 && v[1] === 0 && v[2] === patch
}

/** Problems of one packed manifest; `released` maps each package of the release to its version. */
export function checkPackedManifest(
  manifest: Manifest,
  released: ReadonlyMap<string, string>,
): string[] {
  const problems: string[] = []
  for (const field of DEPENDENCY_FIELDS) {
    for (const [dep, range] of Object.entries(manifest[field] ?? {})) {
      if (range.startsWith('workspace:')) {
        problems.push(
          `${manifest.name}: ${field}.${dep} is still "${range}" in the packed manifest`,
        )
        continue
      }
      const version = released.get(dep)
      if (version === undefined || field === 'devDependencies') continue
      const ok = inCaretRange(range, version)
      if (ok === undefined) {
        problems.push(`${manifest.name}: ${field}.${dep} is "${range}", not a ^x.y.z range`)
      } else if (!ok) {
        problems.push(
          `${manifest.name}: ${field}.${dep} is "${range}", which excludes ${dep}@${version} released with it`,
        )
      }
    }
  }
  return problems
}

/** Where the exports map points (types, default, ...), `source` (TypeScript) aside. */
function exportTargets(exports: unknown): string[] {
  if (typeof exports === 'string') return [exports]
  if (exports === null || typeof exports !== 'object') return []
  return Object.entries(exports).flatMap(([key, value]) =>
    key === 'source' ? [] : exportTargets(value),
  )
}

/**
 * Problems of the file list a package would publish. `hasSource(path)` says whether the
 * package has `path` (relative to its folder) in its sources.
 */
export function checkPublishedFiles(
  manifest: Manifest,
  files: readonly string[],
  hasSource: (path: string) => boolean,
): string[] {
  const problems: string[] = []
  const name = manifest.name
  const set = new Set(files)
  if (!files.some((f) => f.startsWith('dist/')))
    problems.push(`${name}: would publish without dist/`)
  if (!set.has('README.md')) problems.push(`${name}: would publish without README.md`)
  for (const target of exportTargets(manifest.exports)) {
    const path = target.replace(/^\.\//, '')
    if (!set.has(path)) problems.push(`${name}: exports point to ${path}, which is not published`)
  }
  for (const file of files) {
    const m = /^dist\/(.+?)(\.d\.ts|\.js)(\.map)?$/.exec(file)
    if (m && !hasSource(`src/${m[1]}.ts`)) {
      problems.push(`${name}: ${file} has no src/${m[1]}.ts (left over from an old build?)`)
    }
  }
  return problems
}
