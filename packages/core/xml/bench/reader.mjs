// Benchmark for the stream reader. Build first: `npx tsc -p tsconfig.build.json`, then
// `node bench/reader.mjs` from packages/core/connection.
import { Parser } from 'ltx'
import { StreamParser } from '../dist/stream-parser.js'

const CHUNK = 64 * 1024
const MESSAGES = Number(process.env.MESSAGES ?? 300_000)
const RUNS = Number(process.env.RUNS ?? 9)

const HEADER =
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' " +
  "from='capulet.lit' id='s2c_123' version='1.0' xml:lang='en'>"
const MESSAGE =
  "<message to='juliet@capulet.lit/balcony' from='romeo@montague.lit/orchard' id='ktx72v49' type='chat' " +
  "xmlns='jabber:client'><body>Neither, saint, if either thee dislike. How cam'st thou hither, " +
  'tell me, and wherefore? The orchard walls are high.</body></message>'
if (MESSAGE.length !== 261 || Buffer.byteLength(MESSAGE) !== 261) {
  throw new Error(`message is ${Buffer.byteLength(MESSAGE)} bytes, expected 261`)
}

function chunked(buf) {
  const chunks = []
  for (let off = 0; off < buf.length; off += CHUNK) chunks.push(buf.subarray(off, off + CHUNK))
  return chunks
}

const streamBytes = Buffer.from(HEADER + MESSAGE.repeat(MESSAGES))
const streamChunks = chunked(streamBytes)

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

function runReader() {
  let count = 0
  const p = new StreamParser({
    streamStart() {},
    element() {
      count++
    },
    streamEnd() {},
    error(err) {
      throw err
    },
  })
  const t0 = performance.now()
  for (const chunk of streamChunks) p.write(chunk)
  const ms = performance.now() - t0
  if (count !== MESSAGES) throw new Error(`reader got ${count} messages`)
  return ms
}

function runLtx() {
  // ltx's Parser builds the whole stream as one tree: count the stanzas as they close and drop
  // them from the root after each chunk, so that memory stays bounded.
  let root
  class RootElement extends Parser.prototype.DefaultElement {
    constructor(name, attrs) {
      super(name, attrs)
      root ??= this
    }
  }
  const p = new Parser({ Element: RootElement })
  let depth = 0
  let count = 0
  p.parser.on('startElement', () => depth++)
  p.parser.on('endElement', () => {
    if (--depth === 1) count++
  })
  p.on('error', (err) => {
    throw err
  })
  const t0 = performance.now()
  for (const chunk of streamChunks) {
    p.write(chunk)
    if (root) root.children.length = 0
  }
  const ms = performance.now() - t0
  if (count !== MESSAGES) throw new Error(`ltx got ${count} messages`)
  return ms
}

// Runs alternate between the two parsers so that both see the same machine load.
function rates() {
  const readerTimes = []
  const ltxTimes = []
  for (let r = 0; r < RUNS; r++) {
    readerTimes.push(runReader())
    ltxTimes.push(runLtx())
  }
  const rate = (times, pick) => MESSAGES / (pick(times) / 1000)
  return {
    reader: { best: rate(readerTimes, (t) => Math.min(...t)), median: rate(readerTimes, median) },
    ltx: { best: rate(ltxTimes, (t) => Math.min(...t)), median: rate(ltxTimes, median) },
  }
}

// Warm up both.
runReader()
runLtx()
const { reader, ltx } = rates()
const fmt = (n) => Math.round(n).toString()
console.log(
  `reader 261B messages: ${fmt(reader.median)} msg/s (ltx Parser: ${fmt(ltx.median)} msg/s)` +
    ` [median of ${RUNS} runs of ${MESSAGES} messages in ${streamChunks.length} chunks of 64 KiB;` +
    ` best ${fmt(reader.best)} vs ${fmt(ltx.best)} msg/s; ${(reader.median / ltx.median).toFixed(1)}x]`,
)

function bigStanza(size) {
  const open = "<message xmlns='jabber:client' id='big'><body>"
  const close = '</body></message>'
  const text = 'x'.repeat(size - open.length - close.length)
  return { bytes: Buffer.from(HEADER + open + text + close), textLength: text.length }
}

for (const size of [1024 * 1024, 16 * 1024 * 1024]) {
  const { bytes, textLength } = bigStanza(size)
  const chunks = chunked(bytes)
  const times = []
  for (let r = 0; r < 5; r++) {
    let got
    const p = new StreamParser(
      {
        streamStart() {},
        element(el) {
          got = el
        },
        streamEnd() {},
        error(err) {
          throw err
        },
      },
      { maxStanzaSize: size },
    )
    const t0 = performance.now()
    for (const chunk of chunks) p.write(chunk)
    const len = got.getChild('body').getText().length
    times.push(performance.now() - t0)
    if (len !== textLength) throw new Error(`text length ${len}, expected ${textLength}`)
  }
  console.log(
    `reader ${size / 1024 / 1024} MiB stanza: ${median(times).toFixed(1)} ms` +
      ` [median of 5 runs, best ${Math.min(...times).toFixed(1)} ms, ${chunks.length} chunks of 64 KiB]`,
  )
}
