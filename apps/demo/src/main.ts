#!/usr/bin/env node
import { runDemo } from './demo.js'

process.exitCode = await runDemo(process.argv.slice(2), process.env, (line) => {
  process.stdout.write(`${line}\n`)
})
