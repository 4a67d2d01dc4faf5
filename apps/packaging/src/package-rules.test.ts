import { describe, expect, test } from 'vitest'
import { checkPackage } from './package-rules.js'
import type { Manifest, PackageInfo, SourceFile } from './workspace.js'

const WORKSPACE = new Set(['@core/connection', '@core/errors', '@core/xml', '@xep/0198-sm'])

/** A well-formed plugin package; each test breaks one thing. */
function plugin(patch: Partial<Manifest> = {}, sources: SourceFile[] = []): PackageInfo {
  return {
    dir: 'packages/xep/0198-sm',
    hasReadme: true,
    manifest: {
      name: '@xep/0198-sm',
      version: '0.1.0',
      peerDependencies: { '@core/connection': 'workspace:^', '@core/xml': 'workspace:^' },
      devDependencies: { '@core/connection': 'workspace:^', '@core/xml': 'workspace:^' },
      ...patch,
    },
    sources: [
      {
        path: 'src/sm.ts',
        text: "import { definePlugin } from '@core/connection'\nimport { type Element, xml } from '@core/xml'\n",
      },
      ...sources,
    ],
  }
}

describe('packaging rules', () => {
  test('a well-formed plugin package passes', () => {
    expect(checkPackage(plugin(), WORKSPACE)).toEqual([])
  })

  test('a plugin that brings its own copy of the core is flagged', () => {
    const pkg = plugin({
      dependencies: { '@core/connection': 'workspace:^' },
      peerDependencies: { '@core/xml': 'workspace:^' },
    })
    expect(checkPackage(pkg, WORKSPACE)).toEqual([
      expect.stringMatching(/^dependencies\.@core\/connection: a plugin package must not bring/),
    ])
  })

  test('a peer dependency without its dev dependency is flagged', () => {
    const pkg = plugin({ devDependencies: { '@core/xml': 'workspace:^' } })
    expect(checkPackage(pkg, WORKSPACE)).toEqual([
      expect.stringMatching(/^peerDependencies\.@core\/connection without devDependencies/),
    ])
  })

  test('an internal range other than workspace:^ is flagged', () => {
    const pkg = plugin({
      peerDependencies: { '@core/connection': 'workspace:*', '@core/xml': 'workspace:^' },
    })
    expect(checkPackage(pkg, WORKSPACE)).toContainEqual(
      expect.stringMatching(/^peerDependencies\.@core\/connection is "workspace:\*"/),
    )
  })

  test('ltx imported by a plugin, type-only or not, or listed as its dependency, is flagged', () => {
    const pkg = plugin({ dependencies: { ltx: '3.1.2' } }, [
      { path: 'src/queue.ts', text: "import type { Element } from 'ltx'\n" },
      { path: 'src/ack.ts', text: "import {\n  Element,\n} from 'ltx'\n" },
      { path: 'test/sm.test.ts', text: "const ltx = await import('ltx')\n" },
    ])
    expect(checkPackage(pkg, WORKSPACE)).toEqual([
      expect.stringMatching(/^dependencies\.ltx: only @core\/xml depends on ltx/),
      "src/queue.ts imports types from 'ltx': import Element and xml() from @core/xml instead",
      "src/ack.ts imports 'ltx': import Element and xml() from @core/xml instead",
      "test/sm.test.ts imports 'ltx': import Element and xml() from @core/xml instead",
    ])
  })

  test('an import users would not have installed is flagged', () => {
    const pkg = plugin({}, [
      { path: 'src/errors.ts', text: "export { StreamError } from '@core/errors'\n" },
    ])
    expect(checkPackage(pkg, WORKSPACE)).toEqual([
      "src/errors.ts imports '@core/errors', which users will not have: list @core/errors in peerDependencies",
    ])
  })

  test('tests may reach a package through tsconfig paths (one that depends on this one); the code may not', () => {
    const sources = [
      { path: 'test/sm.test.ts', text: "import { MemoryPeer } from '@test/memory-peer'\n" },
      { path: 'src/peer.ts', text: "export { MemoryPeer } from '@test/memory-peer'\n" },
    ]
    const workspace = new Set([...WORKSPACE, '@test/memory-peer'])
    expect(
      checkPackage({ ...plugin({}, sources), testPaths: ['@test/memory-peer'] }, workspace),
    ).toEqual([
      "src/peer.ts imports '@test/memory-peer', which users will not have: list @test/memory-peer in peerDependencies",
    ])
    expect(checkPackage(plugin({}, sources), workspace)).toContain(
      "test/sm.test.ts imports '@test/memory-peer', which package.json does not list",
    )
  })

  test('version 0.0.0 and a missing README are flagged', () => {
    const pkg = { ...plugin({ version: '0.0.0' }), hasReadme: false }
    expect(checkPackage(pkg, WORKSPACE)).toEqual([
      expect.stringMatching(/^version 0\.0\.0: a \^0\.0\.x range matches that version only/),
      'no README.md: npm shows it as the package page',
    ])
  })

  test('the core may depend on its pieces directly, and only @core/xml on ltx', () => {
    const core: PackageInfo = {
      dir: 'packages/core/connection',
      hasReadme: true,
      manifest: {
        name: '@core/connection',
        version: '0.1.0',
        dependencies: { '@core/xml': 'workspace:^', ltx: '3.1.2' },
      },
      sources: [{ path: 'src/connection.ts', text: "import { xml } from '@core/xml'\n" }],
    }
    expect(checkPackage(core, WORKSPACE)).toEqual([
      expect.stringMatching(/^dependencies\.ltx: only @core\/xml depends on ltx/),
    ])
  })

  test('a folder that does not mirror the package name is flagged', () => {
    const pkg = { ...plugin(), dir: 'packages/xep/sm' }
    expect(checkPackage(pkg, WORKSPACE)).toEqual([
      'packages/xep/sm holds "@xep/0198-sm": the folder must mirror the name (@xep/sm)',
    ])
  })
})
