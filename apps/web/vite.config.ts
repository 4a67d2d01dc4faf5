import { defaultClientConditions, defineConfig } from 'vite'

// The workspace packages are read from their sources (the `source` export condition), so the
// page builds without building them first; `browser` (in the defaults) picks
// @transport/ws's browser module: no `ws` package, no node: module.
export default defineConfig({
  resolve: { conditions: ['source', ...defaultClientConditions] },
  build: { target: 'es2022', sourcemap: true },
})
