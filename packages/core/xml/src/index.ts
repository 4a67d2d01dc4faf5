export { Element } from './element.js'
export { ElementReader, type ElementsRead } from './element-reader.js'
export { NS_CLIENT, NS_STANZA_ERRORS, NS_STREAM, NS_STREAM_ERRORS } from './namespaces.js'
export {
  StreamParser,
  type StreamParserHandlers,
  type StreamParserOptions,
} from './stream-parser.js'
export { type XMLChild, xml } from './xml.js'
export { escapeAttr, escapeText, serialize, STREAM_FOOTER, streamHeader } from './xml-serializer.js'
