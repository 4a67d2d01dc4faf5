import { readFile } from 'node:fs/promises'
import { expect, test, vi } from 'vitest'

test('the README shows the example file verbatim, and the example runs', async () => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
  const example = await readFile(new URL('../examples/usage.ts', import.meta.url), 'utf8')
  expect(readme).toContain(example.trim())
  const lines: unknown[] = []
  const spy = vi.spyOn(console, 'log').mockImplementation((...args) => {
    lines.push(args.length === 1 ? args[0] : args)
  })
  try {
    await import('../examples/usage.js')
  } finally {
    spy.mockRestore()
  }
  expect(lines).toEqual([['closeAtStep', 'features'], 1])
})
