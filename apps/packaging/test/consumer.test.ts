// The packages as users get them: every public package packed, installed with npm into an
// empty project outside the workspace (offline), then used there.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { run, tsc } from '../src/commands.js'
import {
  type ConsumerProject,
  createConsumerProject,
  installedCopies,
} from '../src/consumer-project.js'
import { ROOT } from '../src/workspace.js'

/** What the snippets import: the rest must arrive as dependencies and peers of these. */
const DIRECT = [
  '@client/preset',
  '@client/bind',
  '@client/sasl',
  '@core/connection',
  '@core/errors',
  '@core/iq',
  '@core/xml',
  '@test/memory-peer',
  '@test/server',
  '@transport/tcp',
]

let project: ConsumerProject

/**
 * The first ```ts block of the preset README, pointed at a @test/server that serves its
 * domain (example.com is in the test certificate): the server is started first, the
 * client gets its address and CA, and the server reports what it received at the end.
 */
function presetSnippet(): string {
  const readme = readFileSync(join(ROOT, 'packages/client/preset/README.md'), 'utf8')
  const code = /```ts\n([\s\S]*?)```/.exec(readme)?.[1]
  if (!code) throw new Error('packages/client/preset/README.md has no ```ts block')
  const call = 'createClient({'
  if (code.split(call).length !== 2) {
    throw new Error(`the preset README snippet should call ${call} ...}) once`)
  }
  return [
    "import { startTestServer } from '@test/server'",
    "const server = await startTestServer({ domain: 'example.com', users: { alice: 'secret' } })",
    code.replace(call, `${call} service: server.service, tls: { ca: server.certs.ca },`),
    "console.log('server received:', server.received.map((r) => r.element.name).join(' '))",
    'await server.close()',
    '',
  ].join('\n')
}

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    lib: ['ES2023'],
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    // As strict a user as can be: our declaration files are type-checked too.
    skipLibCheck: false,
    types: ['node'],
  },
  files: ['readme-snippet.ts', 'typed-connection.ts'],
}

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'xmpp-consumer-'))
  project = createConsumerProject(dir, DIRECT)
  writeFileSync(join(dir, 'readme-snippet.ts'), presetSnippet())
  cpSync(
    new URL('../fixtures/consumer/typed-connection.ts', import.meta.url),
    join(dir, 'typed-connection.ts'),
  )
  const config = (module: string, moduleResolution: string, more: object) => ({
    ...TSCONFIG,
    compilerOptions: { ...TSCONFIG.compilerOptions, module, moduleResolution, ...more },
  })
  writeFileSync(
    join(dir, 'tsconfig.nodenext.json'),
    JSON.stringify(config('nodenext', 'nodenext', { outDir: 'out' })),
  )
  writeFileSync(
    join(dir, 'tsconfig.bundler.json'),
    // Our declaration files are checked once (above); here only the resolution differs.
    JSON.stringify(config('preserve', 'bundler', { noEmit: true, skipLibCheck: true })),
  )
})

afterAll(() => {
  if (project && process.env.TEST_KEEP_CONSUMER === undefined) {
    rmSync(project.dir, { recursive: true, force: true })
  }
})

describe('a project that installs the packed packages with npm', () => {
  test('npm installed them offline, with every dependency and peer met', () => {
    const names = project.packed.map((p) => p.name)
    expect(names).toEqual(expect.arrayContaining([...DIRECT, '@core/jid', '@xep/0199-ping']))
    // exit status 0: nothing missing, no peer unmet or out of range
    run('npm', ['ls', '--all'], { cwd: project.dir })
  })

  test('one copy of each @core package and of ltx', () => {
    for (const name of ['@core/connection', '@core/errors', '@core/xml', '@core/jid', 'ltx']) {
      expect(installedCopies(project.dir, name), name).toHaveLength(1)
    }
  })

  test('the preset README snippet and the typed snippet compile (moduleResolution nodenext)', () => {
    tsc(['-p', 'tsconfig.nodenext.json'], { cwd: project.dir })
  })

  test('... and with moduleResolution bundler', () => {
    tsc(['-p', 'tsconfig.bundler.json'], { cwd: project.dir })
  })

  test('the preset README snippet logs in to @test/server, pings and sends presence', () => {
    const { stdout } = run(process.execPath, ['out/readme-snippet.js'], { cwd: project.dir })
    expect(stdout).toMatch(/^online as alice@example\.com\/\S+ via SCRAM-SHA-256$/m)
    const received = /^server received: (.*)$/m.exec(stdout)?.[1]?.split(' ')
    expect(received).toEqual(expect.arrayContaining(['iq', 'presence']))
  })

  test('a connection from individual packages with a plugin of its own runs', () => {
    const { stdout } = run(process.execPath, ['out/typed-connection.js'], { cwd: project.dir })
    expect(stdout).toMatch(/^online as juliet@localhost\/\S+ via SCRAM-SHA-256; \d+ stanzas seen$/m)
    expect(stdout).toMatch(/^ping: result; unknown query: StanzaError service-unavailable$/m)
  })

  test('a plugin package that brings its own copy of @core/connection: foreign-core', () => {
    // What npm makes of a plugin that lists @core/connection in dependencies at a range
    // the app's copy does not satisfy: its own copy, nested under it.
    const plugin = join(project.dir, 'node_modules/legacy-plugin')
    mkdirSync(join(plugin, 'node_modules/@core'), { recursive: true })
    cpSync(
      join(project.dir, 'node_modules/@core/connection'),
      join(plugin, 'node_modules/@core/connection'),
      { recursive: true },
    )
    writeFileSync(
      join(plugin, 'package.json'),
      JSON.stringify({ name: 'legacy-plugin', version: '1.0.0', type: 'module', main: 'index.js' }),
    )
    writeFileSync(
      join(plugin, 'index.js'),
      "import { definePlugin } from '@core/connection'\nexport const legacy = definePlugin({ name: 'legacy', setup: () => ({}) })\n",
    )
    cpSync(
      new URL('../fixtures/consumer/two-copies.mjs', import.meta.url),
      join(project.dir, 'two-copies.mjs'),
    )
    const { stdout } = run(process.execPath, ['two-copies.mjs'], { cwd: project.dir })
    expect(stdout).toMatch(/^PluginError foreign-core: plugin "legacy" was made by another copy/)
    expect(stdout).toContain('node_modules/legacy-plugin/node_modules/@core/connection/dist/')
    expect(stdout).toContain('peerDependencies')
  })
})
