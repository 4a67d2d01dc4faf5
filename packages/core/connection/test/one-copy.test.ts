import { PluginError } from '@core/errors'
import { describe, expect, test } from 'vitest'
import { type AnyPlugin, createConnection, definePlugin } from '../src/index.js'
import { newPeer } from './helpers.js'

// A second instance of the module that defines plugins: what an app gets when a plugin
// package brings its own copy of @core/connection (the consumer test in apps/packaging
// builds that layout with npm for real).
const secondCopy = (await import(
  /* @vite-ignore */ `${new URL('../src/plugin.ts', import.meta.url).href}?second-copy`
)) as typeof import('../src/plugin.js')

describe('one copy of the core', () => {
  test('the module loaded twice is two copies (what the tests below rely on)', () => {
    expect(secondCopy.definePlugin).not.toBe(definePlugin)
  })

  test('a plugin made by another copy of @core/connection is refused, naming both copies', () => {
    const foreign = secondCopy.definePlugin({ name: 'legacy', setup: () => ({ ok: true }) })
    const conn = createConnection({ transport: newPeer().transport, domain: 'example.com' })
    let error: unknown
    try {
      conn.use(foreign)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(PluginError)
    expect(error).toMatchObject({ code: 'foreign-core', plugin: 'legacy' })
    expect((error as Error).message).toContain('another copy of @core/connection')
    expect((error as Error).message).toContain('src/plugin.ts')
    expect((error as Error).message).toContain('peerDependencies')
    expect((conn.plugins as Record<string, unknown>).legacy).toBeUndefined()
  })

  test("its with() variants too, and in createConnection's plugin list", () => {
    const foreign = secondCopy.definePlugin({ name: 'legacy', options: { n: 1 }, setup: () => 1 })
    expect(() =>
      createConnection({
        transport: newPeer().transport,
        domain: 'example.com',
        plugins: [foreign.with({ n: 2 })],
      }),
    ).toThrow(expect.objectContaining({ code: 'foreign-core' }))
  })

  test("this copy's plugins and hand-written plugin objects are accepted", () => {
    const own = definePlugin({ name: 'own', setup: () => 'own' })
    const handWritten: AnyPlugin = {
      name: 'plain',
      dependencies: [],
      options: undefined,
      setup: () => 'plain',
      with() {
        return this
      },
    }
    const conn = createConnection({
      transport: newPeer().transport,
      domain: 'example.com',
      plugins: [own, handWritten],
    })
    expect(conn.plugins).toMatchObject({ own: 'own', plain: 'plain' })
  })
})
