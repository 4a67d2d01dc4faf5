// Runs the first ```ts block of a package README as a module inside that package (so that
// its imports resolve as a user's would), and checks what it prints: every
// `console.log(...) // expected` line must print `expected`. Used by each package's
// test/readme.test.ts.
import { readFile, rm, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { vi } from 'vitest'

export interface SnippetRun {
  /** What each console.log printed, formatted as `String()` of its single argument. */
  printed: string[]
  /** The `// ...` comment after each console.log line, in order. */
  expected: string[]
}

export async function runReadmeSnippet(packageDir: URL): Promise<SnippetRun> {
  const readme = await readFile(new URL('README.md', packageDir), 'utf8')
  const match = /```ts\n([\s\S]*?)```/.exec(readme)
  if (!match?.[1]) throw new Error(`${fileURLToPath(packageDir)}README.md has no \`\`\`ts block`)
  const code = match[1]
  const expected = [...code.matchAll(/console\.log\(.*\),?\s*\/\/ (.*)$/gm)].map((m) => m[1] ?? '')
  const file = new URL(`test/.readme-snippet-${process.pid}.ts`, packageDir)
  await writeFile(file, code)
  const printed: string[] = []
  const spy = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    printed.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '))
  })
  try {
    await import(/* @vite-ignore */ `${file.href}?t=${Date.now()}`)
  } finally {
    spy.mockRestore()
    await rm(file, { force: true })
  }
  return { printed, expected }
}
