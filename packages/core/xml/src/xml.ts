import { Element } from './element.js'

export type XMLChild = Element | string | number | null | undefined | false | readonly XMLChild[]

/**
 * Builds an element: `xml('message', { to, type: 'chat' }, xml('body', {}, 'hi'))`.
 * Attributes whose value is undefined or null are left out; children that are null,
 * undefined or false are skipped, arrays are flattened.
 */
export function xml(
  name: string,
  attrs?: Record<string, string | number | undefined | null> | null,
  ...children: XMLChild[]
): Element {
  const el = new Element(name)
  if (attrs) {
    for (const key in attrs) {
      const value = attrs[key]
      if (value !== undefined && value !== null) el.attrs[key] = String(value)
    }
  }
  append(el, children)
  return el
}

function append(el: Element, children: readonly XMLChild[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    if (Array.isArray(child)) append(el, child)
    else if (child instanceof Element) {
      child.parent = el
      el.children.push(child)
    } else el.children.push(String(child))
  }
}
