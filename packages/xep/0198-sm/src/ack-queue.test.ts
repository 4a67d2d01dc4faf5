import { xml } from '@core/xml'
import { describe, expect, test } from 'vitest'
import { AckQueue, Held } from './ack-queue.js'
import { advance, distance, parseUnsignedInt } from './counter.js'

describe('AckQueue', () => {
  test('keeps order across growth and wrap-around of its ring', () => {
    const q = new AckQueue(4)
    const out: Held[] = []
    let next = 0
    let expected = 0
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < (round % 7) + 1; i++) {
        q.push(new Held(xml('message', { id: String(next++) }), 0))
        q.written++
      }
      q.shift(round % 3, out)
      for (const h of out) {
        expect(h.element.attrs.id).toBe(String(expected++))
        h.acked()
      }
      out.length = 0
    }
    expect(q.size).toBe(next - expected)
    expect(q.at(0)?.element.attrs.id).toBe(String(expected))
    const rest = q.drain()
    expect(rest.map((h) => Number(h.element.attrs.id))).toEqual(
      Array.from({ length: next - expected }, (_, i) => expected + i),
    )
    expect(q.size).toBe(0)
    expect(q.written).toBe(0)
  })

  test('written counts the oldest entries; shifting takes from them', () => {
    const q = new AckQueue()
    for (let i = 0; i < 5; i++) q.push(new Held(xml('message'), 0))
    q.written = 3
    expect(q.unwritten).toBe(2)
    q.shift(2, [])
    expect(q.written).toBe(1)
    expect(q.size).toBe(3)
  })

  test('a delivery promise settles once: acked or failed', async () => {
    const a = new Held(xml('message'), 0)
    const b = new Held(xml('message'), 0)
    a.acked()
    b.failed(new Error('lost'))
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
