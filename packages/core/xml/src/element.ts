// ltx's Element class, from its own module: ltx's index also loads its parsers, which pull
// Node's `events` into browser bundles (about 6 KB minified) for nothing we use.
import type { Element as LtxElement } from 'ltx'
import ElementClass from 'ltx/src/Element.js'

export const Element: typeof LtxElement = ElementClass
export type Element = LtxElement
