import type { Metafile } from 'esbuild'

export declare const ENTRY: string
export declare function buildMinimalClient(options?: { sourcemap?: boolean }): Promise<{
  code: Uint8Array
  map: { sources: string[]; mappings: string } | undefined
  gzip: number
  metafile: Metafile
}>
