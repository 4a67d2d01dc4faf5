// The browser page (apps/web, built with Vite) in Debian's Chromium, headless, against
// Prosody over WebSocket: what a person would see. SCRAM runs on WebCrypto there.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import { xml } from '@core/xml'
import type { Element } from 'ltx'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, onTestFailed, test } from 'vitest'
import { newClient, prosody, server } from './prosody.js'

/** The page's document, as the callbacks run by page.waitForFunction() see it. */
declare const document: { getElementById(id: string): { textContent: string | null } | null }

const CHROMIUM = '/usr/bin/chromium'
const WEB = fileURLToPath(new URL('../../web/', import.meta.url))
const REPORTS = fileURLToPath(new URL('../../../.test-reports/', import.meta.url))

function isCI(): boolean {
  const ci = process.env.CI
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false'
}

const haveChromium = existsSync(CHROMIUM)
if (!haveChromium) {
  if (isCI()) {
    throw new Error(
      `${CHROMIUM} is missing, and CI is set: the browser test must run (.ci/run installs Debian's chromium)`,
    )
  }
  console.warn(
    `\n! interop: ${CHROMIUM} is missing: the browser test is SKIPPED (apt-get install chromium)\n`,
  )
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.css': 'text/css',
}

/** Serves the built page from `root` on 127.0.0.1 (a free port). */
async function serve(root: string): Promise<{ server: Server; url: string }> {
  const http = createServer((request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname))
    const file = join(root, path === '/' ? 'index.html' : path)
    if (!file.startsWith(root) || !existsSync(file)) {
      response.writeHead(404).end()
      return
    }
    response.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' })
    response.end(readFileSync(file))
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  return { server: http, url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/` }
}

describe.skipIf(!prosody || !haveChromium)('apps/web in headless Chromium', () => {
  let out: string
  let site: { server: Server; url: string }
  let browser: Browser

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'xmpp-web-'))
    const built = spawnSync(
      process.execPath,
      [join(WEB, 'node_modules/vite/bin/vite.js'), 'build', '--outDir', out, '--emptyOutDir'],
      { cwd: WEB, encoding: 'utf8' },
    )
    if (built.status !== 0) throw new Error(`vite build failed:\n${built.stdout}\n${built.stderr}`)
    site = await serve(out)
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
      ],
    })
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    await new Promise((resolve) => site?.server.close(resolve))
    if (out) rmSync(out, { recursive: true, force: true })
  })

  /** A fresh page whose screenshot is saved to .test-reports/ when the test fails. */
  async function openPage(name: string, query: Record<string, string>): Promise<Page> {
    const page = await browser.newPage()
    const logs: string[] = []
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`))
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`))
    onTestFailed(async () => {
      mkdirSync(REPORTS, { recursive: true })
      await page.screenshot({ path: join(REPORTS, `browser-${name}.png`), fullPage: true })
      console.error(`browser console (${name}):\n${logs.join('\n')}`)
    })
    await page.goto(`${site.url}?${new URLSearchParams(query)}`)
    return page
  }

  const stateIs = (page: Page, state: string) =>
    page.waitForFunction((s) => document.getElementById('state')?.textContent === s, state, {
      timeout: 10_000,
    })

  test('logs in with SCRAM over WebSocket, exchanges messages with a TCP client, shows them', async () => {
    const s = server()
    const peer = newClient('erin', { resource: 'tcp' })
    await peer.connect()
    const page = await openPage('messages', {
      service: s.websocketUrl,
      jid: `walt@${s.domain}/browser`,
      to: `erin@${s.domain}/tcp`,
    })
    expect(await page.textContent('#state')).toBe('disconnected')
    await page.fill('#password', s.users.walt as string)
    await page.click('#connect')
    await stateIs(page, 'online')
    // SCRAM in the browser: WebCrypto, as there is no node:crypto.
    expect(await page.textContent('#mechanism')).toBe(`(SCRAM-SHA-1 as walt@${s.domain}/browser)`)

    const atPeer = new Promise<Element>((resolve) => {
      peer.hooks.on('stanza', ({ element }) => {
        if (element.getChild('body')) resolve(element)
      })
    })
    await page.fill('#body', 'hello from Chromium')
    await page.click('#send')
    const got = await atPeer
    expect(got.getChildText('body')).toBe('hello from Chromium')
    // Stream management: the page marks the message once the server acknowledged it.
    await page.waitForSelector('#conversation li.acked', { timeout: 10_000 })
    expect(got.attrs.from).toBe(`walt@${s.domain}/browser`)

    await peer.send(
      xml(
        'message',
        { to: `walt@${s.domain}/browser`, type: 'chat' },
        xml('body', {}, 'hello back'),
      ),
    )
    await page.waitForFunction(
      () => document.getElementById('conversation')?.textContent?.includes('hello back'),
      undefined,
      { timeout: 10_000 },
    )
    const lines = await page.$$eval('#conversation li', (items) => items.map((i) => i.textContent))
    expect(lines).toEqual(['me: hello from Chromium', `erin@${s.domain}/tcp: hello back`])

    await page.click('#disconnect')
    await stateIs(page, 'stopped')
    expect(await page.textContent('#error')).toBe('')
    await page.close()
  })

  test('survives a forced disconnect: reconnecting, then online again, resumed; a message sent meanwhile arrives', async () => {
    const s = server()
    const peer = newClient('erin', { resource: 'tcp-resume' })
    await peer.connect()
    const page = await openPage('resume', {
      service: s.websocketUrl,
      jid: `walt@${s.domain}/browser-resume`,
      to: `erin@${s.domain}/tcp-resume`,
    })
    await page.fill('#password', s.users.walt as string)
    await page.click('#connect')
    await stateIs(page, 'online')
    await page.click('#drop')
    // The peer writes while the page's connection is down: Prosody keeps it for the
    // hibernating session, and only a resumed session gets it.
    await peer.send(
      xml(
        'message',
        { to: `walt@${s.domain}/browser-resume`, type: 'chat' },
        xml('body', {}, 'while you were away'),
      ),
    )
    await page.waitForFunction(
      () => document.getElementById('history')?.textContent?.endsWith('online (resumed)'),
      undefined,
      { timeout: 10_000 },
    )
    const history = (await page.textContent('#history')) ?? ''
    expect(history).toMatch(
      /^connecting → online → disconnected \(resumable\) → reconnecting \(attempt 1\) → resuming → online \(resumed\)$/,
    )
    await page.waitForFunction(
      () => document.getElementById('conversation')?.textContent?.includes('while you were away'),
      undefined,
      { timeout: 10_000 },
    )
    const lines = await page.$$eval('#conversation li', (items) => items.map((i) => i.textContent))
    expect(lines).toEqual([`erin@${s.domain}/tcp-resume: while you were away`])
    await page.click('#disconnect')
    await stateIs(page, 'stopped')
    await page.close()
  })
})
