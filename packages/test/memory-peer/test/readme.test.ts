import { expect, test } from 'vitest'
import { runReadmeSnippet } from '../../../../scripts/readme-snippet.js'

test('the README example runs and prints what it says', async () => {
  const { printed, expected } = await runReadmeSnippet(new URL('../', import.meta.url))
  expect(expected.length).toBeGreaterThan(0)
  expect(printed).toEqual(expected)
})
