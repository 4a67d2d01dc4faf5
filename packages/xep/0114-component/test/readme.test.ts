import { expect, test } from 'vitest'
import { runReadmeSnippet } from '../../../../scripts/readme-snippet.js'

test('the README snippet runs and prints what its comments say', async () => {
  const { printed, expected } = await runReadmeSnippet(new URL('../', import.meta.url))
  expect(expected.length).toBeGreaterThan(0)
  expect(printed).toEqual(expected)
})
