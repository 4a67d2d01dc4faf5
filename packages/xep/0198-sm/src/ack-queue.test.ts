import { xml } from '@core/xml'
import { describe, expect, test } from 'vitest'
import { AckQueue, Held } from './ack-queue.js'
import { advance, distance, parseUnsignedInt } from './counter.js'

describe('AckQueue', () => {
  test('keeps order across growth and wrap-around of its ring, in-write, XML-only and Held entries mixed', async () => {
    const q = new AckQueue(4)
    const acked: Held[] = []
    let next = 0
    let expected = 0
    for (let round = 0; round < 50; round++) {
      // One write per round: its text grows as stanzas join it (as the connection's does).
      const write = { text: '<r xmlns="urn:xmpp:sm:3"/>' }
      for (let i = 0; i < (round % 7) + 1; i++) {
        const id = String(next++)
        const data = `<message id="${id}"/>`
        if (next % 3 === 0) {
          const held = new Held(xml('message', { id }), undefined, 0)
          acked.push(held)
          q.push(held)
        } else if (next % 3 === 1) {
          q.pushWritten(write, write.text.length, data.length)
          write.text += data
        } else q.push(data)
        q.written++
      }
      const n = Math.min(round % 3, q.size)
      q.ack(n)
      expected += n
    }
    expect(q.size).toBe(next - expected)
    expect(q.at(0)?.element.attrs.id).toBe(String(expected))
    const bytes = q.bytes
    const rest = q.drain()
    // The byte bound counts exactly the XML of the stanzas still held.
    expect(rest.reduce((sum, h) => sum + h.data.length, 0)).toBe(bytes)
    expect(rest.map((h) => Number(h.element.attrs.id))).toEqual(
      Array.from({ length: next - expected }, (_, i) => expected + i),
    )
    expect(q.size).toBe(0)
    expect(q.bytes).toBe(0)
    expect(q.written).toBe(0)
    // The Held entries acknowledged before the drain were told so.
    const before = acked.filter((h) => Number(h.element.attrs.id) < expected)
    expect(before.length).toBeGreaterThan(0)
    await Promise.all(before.map((h) => expect(h.promise).resolves.toBeUndefined()))
  })

  test('bytes is the length of the XML held: added on push, taken off on ack and drain', () => {
    const q = new AckQueue()
    q.push('<message id="1"/>')
    q.push(new Held(xml('message', { id: '22' }), undefined, 0))
    expect(q.bytes).toBe('<message id="1"/>'.length + '<message id="22"/>'.length)
    q.written = 2
    q.ack(1)
    expect(q.bytes).toBe('<message id="22"/>'.length)
    q.drain()
    expect(q.bytes).toBe(0)
  })

  test('written counts the oldest entries; acknowledging takes from them', () => {
    const q = new AckQueue()
    for (let i = 0; i < 5; i++) q.push('<message/>')
    q.written = 3
    q.ack(2)
    expect(q.written).toBe(1)
    expect(q.size).toBe(3)
  })

  test('an entry kept as XML reads back as the stanza written, and stays a Held from then on', () => {
    const q = new AckQueue()
    q.push('<message to="a@b" id="x"><body>hi &amp; bye</body></message>')
    const held = q.at(0) as Held
    expect(held.element.attrs).toMatchObject({ to: 'a@b', id: 'x' })
    expect(held.element.getChildText('body')).toBe('hi & bye')
    expect(q.at(0)).toBe(held)
    expect(held.data).toBe('<message to="a@b" id="x"><body>hi &amp; bye</body></message>')
  })

  test('a delivery promise settles once: acked or failed', async () => {
    const a = new Held(xml('message'), undefined, 0)
    const b = new Held(xml('message'), undefined, 0)
    a.acked()
    b.failed(new Error('lost'))
    b.acked()
    await expect(a.promise).resolves.toBeUndefined()
    await expect(b.promise).rejects.toThrow('lost')
  })
})

describe('counters (XEP-0198 §4: unsigned 32-bit, wrapping)', () => {
  test('advance wraps from 2^32 - 1 to 0', () => {
    expect(advance(0xffffffff)).toBe(0)
    expect(advance(0xfffffffe, 3)).toBe(1)
  })

  test('distance is modular', () => {
    expect(distance(0xfffffffe, 1)).toBe(3)
    expect(distance(5, 5)).toBe(0)
    expect(distance(5, 4)).toBe(0xffffffff)
  })

  test.each([
    ['0', 0],
    ['4294967295', 4294967295],
    ['+7', 7],
    ['007', 7],
    [' 7\n', 7],
  ])('parseUnsignedInt(%j) = %d', (text, n) => {
    expect(parseUnsignedInt(text)).toBe(n)
  })

  test.each([
    [undefined],
    [''],
    ['-1'],
    ['-0'],
    ['++1'],
    ['4294967296'],
    ['1_000'],
    ['１'],
    ['1 1'],
    ['0x1'],
    [' '],
  ])('parseUnsignedInt(%j) is undefined', (text) => {
    expect(parseUnsignedInt(text)).toBeUndefined()
  })
})
