import { describe, expect, test } from 'vitest'
import { checkPackedManifest, checkPublishedFiles, inCaretRange } from './release-checks.js'

const manifest = {
  name: '@xep/0199-ping',
  version: '0.2.0',
  exports: {
    '.': { types: './dist/index.d.ts', source: './src/index.ts', default: './dist/index.js' },
    './package.json': './package.json',
  },
}
const files = ['README.md', 'package.json', 'dist/index.d.ts', 'dist/index.js', 'src/index.ts']

describe('release checks', () => {
  test('caret ranges', () => {
    expect(inCaretRange('^0.1.0', '0.1.7')).toBe(true)
    expect(inCaretRange('^0.1.0', '0.2.0')).toBe(false)
    expect(inCaretRange('^0.1.3', '0.1.2')).toBe(false)
    expect(inCaretRange('^1.2.0', '1.9.0')).toBe(true)
    expect(inCaretRange('^1.2.0', '2.0.0')).toBe(false)
    expect(inCaretRange('^0.0.1', '0.0.2')).toBe(false)
    expect(inCaretRange('~0.1.0', '0.1.1')).toBeUndefined()
  })

  test('a complete package passes', () => {
    expect(checkPublishedFiles(manifest, files, () => true)).toEqual([])
  })

  test('a package without dist, without README, or with a stale build file fails', () => {
    const noDist = files.filter((f) => !f.startsWith('dist/'))
    expect(checkPublishedFiles(manifest, noDist, () => true)).toEqual([
      '@xep/0199-ping: would publish without dist/',
      '@xep/0199-ping: exports point to dist/index.d.ts, which is not published',
      '@xep/0199-ping: exports point to dist/index.js, which is not published',
    ])
    const noReadme = files.filter((f) => f !== 'README.md')
    expect(checkPublishedFiles(manifest, noReadme, () => true)).toEqual([
      '@xep/0199-ping: would publish without README.md',
    ])
    const stale = [...files, 'dist/router.js']
    expect(checkPublishedFiles(manifest, stale, (p) => p === 'src/index.ts')).toEqual([
      '@xep/0199-ping: dist/router.js has no src/router.ts (left over from an old build?)',
    ])
  })

  test('a workspace: range left in a packed manifest fails', () => {
    const packed = { ...manifest, peerDependencies: { '@core/connection': 'workspace:^' } }
    expect(checkPackedManifest(packed, new Map([['@core/connection', '0.2.0']]))).toEqual([
      '@xep/0199-ping: peerDependencies.@core/connection is still "workspace:^" in the packed manifest',
    ])
  })

  test('an internal range that excludes the version released with it fails', () => {
    const packed = { ...manifest, peerDependencies: { '@core/connection': '^0.1.0' } }
    expect(checkPackedManifest(packed, new Map([['@core/connection', '0.2.0']]))).toEqual([
      '@xep/0199-ping: peerDependencies.@core/connection is "^0.1.0", which excludes @core/connection@0.2.0 released with it',
    ])
    expect(checkPackedManifest(packed, new Map([['@core/connection', '0.1.4']]))).toEqual([])
  })
})
