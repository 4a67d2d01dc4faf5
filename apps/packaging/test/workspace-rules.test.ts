import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { checkPackage } from '../src/package-rules.js'
import { publicPackages, ROOT, readWorkspacePackages } from '../src/workspace.js'

const all = readWorkspacePackages()
const names = new Set(all.map((p) => p.manifest.name))

describe('every package under packages/ follows the packaging rules', () => {
  test('there are packages to check', () => {
    expect(all.length).toBeGreaterThanOrEqual(13)
  })

  for (const pkg of all) {
    test(pkg.manifest.name, () => {
      expect(checkPackage(pkg, names)).toEqual([])
    })
  }

  test('this app lists every public package, so that turbo builds them before its tests', () => {
    const own = JSON.parse(readFileSync(join(ROOT, 'apps/packaging/package.json'), 'utf8'))
    const missing = publicPackages()
      .map((p) => p.manifest.name)
      .filter((n) => own.devDependencies?.[n] !== 'workspace:^')
    expect(missing, 'add them to apps/packaging devDependencies as "workspace:^"').toEqual([])
  })
})
