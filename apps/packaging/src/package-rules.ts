// The packaging rules every workspace package is held to, so that what `npm install` gives
// a user works: one copy of the core, one XML dependency, ranges that mean what they say.
// Checked by test/workspace-rules.test.ts on every package under packages/, including
// packages added later.
import { builtinModules } from 'node:module'
import type { PackageInfo } from './workspace.js'

const BUILTINS: ReadonlySet<string> = new Set(builtinModules)

/**
 * The host: the core and the pieces it is built from. They depend on each other directly;
 * everything that plugs into them takes them as peer dependencies.
 */
export const FOUNDATION: ReadonlySet<string> = new Set([
  '@core/connection',
  '@core/errors',
  '@core/jid',
  '@core/xml',
])

/**
 * Assemblies: they pick the plugins and the core for the app (like an app would), so they
 * may depend on them directly. A new assembly is added here, on purpose.
 */
export const ASSEMBLIES: ReadonlySet<string> = new Set(['@client/preset', '@test/server'])

/** The only package that may depend on and import ltx. */
export const XML_PACKAGE = '@core/xml'
/**
 * May import ltx's types only (`import type`), with @types/ltx as a dependency: @core/xml
 * itself depends on @core/errors, so @core/errors cannot take the type from @core/xml.
 */
export const LTX_TYPES_ONLY: ReadonlySet<string> = new Set(['@core/errors'])

export type Role = 'foundation' | 'assembly' | 'plugin'

export function roleOf(name: string): Role {
  if (FOUNDATION.has(name)) return 'foundation'
  if (ASSEMBLIES.has(name)) return 'assembly'
  return 'plugin'
}

const DEPENDENCY_FIELDS = ['dependencies', 'peerDependencies', 'devDependencies'] as const

/** `import ... from 'x'`, `export ... from 'x'`, `import 'x'`, `import('x')`, `require('x')`. */
const IMPORT =
  /(?:\b(?:import|export)\s+(type\s+)?[^'";]*?\bfrom\s*|\bimport\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)['"]([^'"]+)['"]/g

export interface ImportRef {
  file: string
  specifier: string
  /** The package it names: `@scope/name` or `name` (subpaths removed). */
  packageName: string
  typeOnly: boolean
  /** A test, an example or a script: not part of what users run. */
  testOnly: boolean
}

function packageNameOf(specifier: string): string | undefined {
  // `#name`: the package's own subpath imports (its package.json "imports" field).
  if (
    specifier.startsWith('.') ||
    specifier.startsWith('/') ||
    specifier.startsWith('#') ||
    specifier.startsWith('node:')
  ) {
    return undefined
  }
  if (BUILTINS.has(specifier.split('/')[0] as string)) return undefined
  const parts = specifier.split('/')
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]
}

/** Files users do not run: tests, test helpers, examples, benchmarks, scripts. */
export function isTestOnly(path: string): boolean {
  return !path.startsWith('src/') || /\.(test|spec|fuzz)\.[cm]?[jt]s$/.test(path)
}

export function importsOf(pkg: PackageInfo): ImportRef[] {
  const out: ImportRef[] = []
  for (const file of pkg.sources) {
    for (const match of file.text.matchAll(IMPORT)) {
      const specifier = match[2] as string
      const packageName = packageNameOf(specifier)
      if (packageName === undefined) continue
      out.push({
        file: file.path,
        specifier,
        packageName,
        typeOnly: match[1] !== undefined,
        testOnly: isTestOnly(file.path),
      })
    }
  }
  return out
}

/**
 * What is wrong with one package, as messages that say how to fix it; [] when nothing is.
 * `workspaceNames` are the names of every package of the workspace.
 */
export function checkPackage(pkg: PackageInfo, workspaceNames: ReadonlySet<string>): string[] {
  const problems: string[] = []
  const m = pkg.manifest
  const name = m.name
  const role = roleOf(name)
  const isInternal = (dep: string) => workspaceNames.has(dep)

  const [, scope, folder] = pkg.dir.split('/')
  if (name !== `@${scope}/${folder}`) {
    problems.push(
      `${pkg.dir} holds "${name}": the folder must mirror the name (@${scope}/${folder})`,
    )
  }
  if (m.private === true) return problems

  // Versions: 0.0.x ranges match one version only (^0.0.0 is 0.0.0 and nothing else).
  const version = /^(\d+)\.(\d+)\.(\d+)(?:-[\w.]+)?$/.exec(m.version ?? '')
  if (!version) problems.push(`version "${m.version}" is not a semver version`)
  else if (version[1] === '0' && version[2] === '0') {
    problems.push(
      `version ${m.version}: a ^0.0.x range matches that version only; start at 0.1.0 so that ^ ranges admit patches`,
    )
  }
  if (!pkg.hasReadme) problems.push('no README.md: npm shows it as the package page')

  // Internal ranges: workspace:^, which pnpm publishes as ^<version>.
  for (const field of DEPENDENCY_FIELDS) {
    for (const [dep, range] of Object.entries(m[field] ?? {})) {
      if (isInternal(dep) && range !== 'workspace:^') {
        problems.push(
          `${field}.${dep} is "${range}": internal ranges are "workspace:^" (published as ^<version>)`,
        )
      }
    }
  }

  // One copy of the core: a plugin takes what it plugs into as peer dependencies.
  if (role === 'plugin') {
    for (const dep of Object.keys(m.dependencies ?? {})) {
      if (isInternal(dep)) {
        problems.push(
          `dependencies.${dep}: a plugin package must not bring its own copy of ${dep}; move it to peerDependencies ("workspace:^") and devDependencies ("workspace:^")`,
        )
      }
    }
    for (const dep of Object.keys(m.peerDependencies ?? {})) {
      if (isInternal(dep) && m.devDependencies?.[dep] !== 'workspace:^') {
        problems.push(
          `peerDependencies.${dep} without devDependencies.${dep} "workspace:^": the package's own tests need it installed`,
        )
      }
    }
  }

  // One XML dependency, in @core/xml.
  if (name !== XML_PACKAGE) {
    for (const field of DEPENDENCY_FIELDS) {
      if (m[field]?.ltx !== undefined) {
        problems.push(
          `${field}.ltx: only ${XML_PACKAGE} depends on ltx; import Element and xml() from ${XML_PACKAGE}`,
        )
      }
    }
  }

  // Imports: what users run must be declared where users get it.
  const runtimeDeps = { ...m.dependencies, ...m.peerDependencies }
  for (const ref of importsOf(pkg)) {
    if (ref.packageName === 'ltx' && name !== XML_PACKAGE) {
      const allowed = LTX_TYPES_ONLY.has(name) && ref.typeOnly
      if (!allowed) {
        problems.push(
          `${ref.file} imports ${ref.typeOnly ? 'types from ' : ''}'${ref.specifier}': import Element and xml() from ${XML_PACKAGE} instead`,
        )
      }
      continue
    }
    if (ref.packageName === name || ref.packageName === 'ltx') continue
    if (ref.testOnly) {
      const listed = ref.packageName in runtimeDeps || ref.packageName in (m.devDependencies ?? {})
      if (!listed && !pkg.testPaths?.includes(ref.packageName)) {
        if (isInternal(ref.packageName)) {
          problems.push(`${ref.file} imports '${ref.specifier}', which package.json does not list`)
        }
      }
      continue
    }
    if (!(ref.packageName in runtimeDeps)) {
      const where = ref.packageName in (m.devDependencies ?? {}) ? ' (only in devDependencies)' : ''
      problems.push(
        `${ref.file} imports '${ref.specifier}', which users will not have${where}: list ${ref.packageName} in ${role === 'plugin' && isInternal(ref.packageName) ? 'peerDependencies' : 'dependencies'}`,
      )
    }
  }
  return [...new Set(problems)]
}
