import { describe, expect, test } from 'vitest'
import { discoverWebSocket, type FetchLike, REL_WEBSOCKET } from './discovery.js'

/** A fetch that serves `documents` by URL (404 otherwise) and records what was asked. */
function serving(documents: Record<string, string>, redirects: Record<string, string> = {}) {
  const asked: string[] = []
  const fetch: FetchLike = async (url) => {
    asked.push(url)
    const final = redirects[url] ?? url
    const text = documents[final]
    return { ok: text !== undefined, url: final, text: async () => text ?? '' }
  }
  return { fetch, asked }
}

const json = (links: { rel: string; href: string }[]) => JSON.stringify({ links })

describe('XEP-0156 host-meta', () => {
  test('the JSON form, over HTTPS: wss links in order; ws, BOSH and other relations ignored', async () => {
    const { fetch, asked } = serving({
      'https://example.com/.well-known/host-meta.json': json([
        { rel: 'urn:xmpp:alt-connections:xbosh', href: 'https://example.com/http-bind' },
        { rel: REL_WEBSOCKET, href: 'ws://example.com/plain' },
        { rel: REL_WEBSOCKET, href: 'wss://example.com/xmpp-websocket' },
        { rel: REL_WEBSOCKET, href: 'wss://backup.example.com/ws' },
      ]),
    })
    expect(await discoverWebSocket('example.com', { fetch })).toEqual([
      'wss://example.com/xmpp-websocket',
      'wss://backup.example.com/ws',
    ])
    expect(asked).toEqual(['https://example.com/.well-known/host-meta.json'])
  })

  test('the XML form when there is no JSON one', async () => {
    const { fetch, asked } = serving({
      'https://example.com/.well-known/host-meta': `<?xml version='1.0' encoding='utf-8'?>
<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>
  <Link rel="urn:xmpp:alt-connections:xbosh" href="https://example.com/http-bind"/>
  <Link rel="${REL_WEBSOCKET}" href="wss://example.com/ws?a=1&amp;b=2"/>
</XRD>`,
    })
    expect(await discoverWebSocket('example.com', { fetch })).toEqual([
      'wss://example.com/ws?a=1&b=2',
    ])
    expect(asked).toEqual([
      'https://example.com/.well-known/host-meta.json',
      'https://example.com/.well-known/host-meta',
    ])
  })

  test('a redirect that leaves HTTPS is not followed into', async () => {
    const { fetch } = serving(
      {
        'http://example.com/hm.json': json([{ rel: REL_WEBSOCKET, href: 'wss://evil.example/ws' }]),
      },
      { 'https://example.com/.well-known/host-meta.json': 'http://example.com/hm.json' },
    )
    expect(await discoverWebSocket('example.com', { fetch })).toEqual([])
  })

  test('nothing usable: no documents, bad JSON, a DTD, only ws: links', async () => {
    expect(await discoverWebSocket('example.com', serving({}))).toEqual([])
    const bad = serving({
      'https://example.com/.well-known/host-meta.json': '{"links": [',
      'https://example.com/.well-known/host-meta':
        '<!DOCTYPE XRD [<!ENTITY x "wss://evil/">]><XRD><Link rel="urn:xmpp:alt-connections:websocket" href="&x;"/></XRD>',
    })
    expect(await discoverWebSocket('example.com', bad)).toEqual([])
    const plain = serving({
      'https://example.com/.well-known/host-meta.json': json([
        { rel: REL_WEBSOCKET, href: 'ws://example.com/ws' },
      ]),
    })
    expect(await discoverWebSocket('example.com', plain)).toEqual([])
  })

  test('a fetch that fails (no network) finds nothing; an aborted one rejects', async () => {
    const failing: FetchLike = () => Promise.reject(new TypeError('fetch failed'))
    expect(await discoverWebSocket('example.com', { fetch: failing })).toEqual([])
    const controller = new AbortController()
    controller.abort(new Error('stop'))
    await expect(
      discoverWebSocket('example.com', { fetch: failing, signal: controller.signal }),
    ).rejects.toThrow('stop')
  })
})
