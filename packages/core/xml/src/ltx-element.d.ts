// ltx's Element module (exported by ltx as `ltx/src/*`), typed from @types/ltx.
declare module 'ltx/src/Element.js' {
  import type { Element } from 'ltx'
  const ElementClass: typeof Element
  export default ElementClass
}
