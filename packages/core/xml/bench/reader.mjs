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

// Richer stanza shapes (issue 9): entities, namespaced extension children, many attributes.
const SHAPES = {
  'chat with entities and a chat state':
    "<message to='juliet@capulet.lit/balcony' from='romeo@montague.lit/orchard' id='m1' type='chat'>" +
    '<body>I &lt;3 you &amp; &quot;only&quot; you &#x1F600; &apos;tis true</body>' +
    "<active xmlns='http://jabber.org/protocol/chatstates'/>" +
    "<markable xmlns='urn:xmpp:chat-markers:0'/><origin-id xmlns='urn:xmpp:sid:0' id='a1b2c3'/></message>",
  'presence with caps, MUC and delay':
    "<presence from='coven@chat.shakespeare.lit/thirdwitch' to='hag66@shakespeare.lit/pda' id='p1'>" +
    '<show>away</show><status>Out &amp; about</status><priority>5</priority>' +
    "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.org' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>" +
    "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant' jid='hag66@shakespeare.lit/pda'/></x>" +
    "<delay xmlns='urn:xmpp:delay' from='coven@chat.shakespeare.lit' stamp='2002-09-10T23:41:07Z'/></presence>",
  'roster result with 20 items':
    "<iq to='juliet@example.com/balcony' type='result' id='roster_1'><query xmlns='jabber:iq:roster' ver='ver11'>" +
    Array.from(
      { length: 20 },
      (_, k) =>
        `<item jid='contact${k}@example.net' name='Contact ${k}' subscription='both'><group>Friends</group></item>`,
    ).join('') +
    '</query></iq>',
  'groupchat with delay and stanza-id':
    "<message from='coven@chat.shakespeare.lit/firstwitch' to='hecate@shakespeare.lit/broom' type='groupchat' id='162BEBB1'>" +
    '<body>Thrice the brinded cat hath mew&apos;d.</body>' +
    "<delay xmlns='urn:xmpp:delay' from='coven@chat.shakespeare.lit' stamp='2002-10-13T23:58:37Z'/>" +
    "<stanza-id xmlns='urn:xmpp:sid:0' id='5f3dbc5e-e1d3-4077-a492-693f3769c7ad' by='coven@chat.shakespeare.lit'/></message>",
}
const SHAPE_MESSAGES = Math.round(MESSAGES / 3)

function timeShape(chunks, makeParser) {
  const times = []
  for (let r = 0; r < RUNS; r++) times.push(makeParser(chunks))
  return median(times)
}

for (const [name, stanza] of Object.entries(SHAPES)) {
  const chunks = chunked(Buffer.from(HEADER + stanza.repeat(SHAPE_MESSAGES)))
  const reader = (cs) => {
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
    for (const chunk of cs) p.write(chunk)
    const ms = performance.now() - t0
    if (count !== SHAPE_MESSAGES) throw new Error(`reader got ${count} stanzas`)
    return ms
  }
  const ltx = (cs) => {
    let root
    class RootElement extends Parser.prototype.DefaultElement {
      constructor(n, attrs) {
        super(n, attrs)
        root ??= this
      }
    }
    const p = new Parser({ Element: RootElement })
    p.on('error', (err) => {
      throw err
    })
    const t0 = performance.now()
    for (const chunk of cs) {
      p.write(chunk)
      if (root) root.children.length = 0
    }
    return performance.now() - t0
  }
  reader(chunks)
  ltx(chunks)
  const readerMs = timeShape(chunks, reader)
  const ltxMs = timeShape(chunks, ltx)
  const rate = (ms) => Math.round(SHAPE_MESSAGES / (ms / 1000))
  console.log(
    `reader ${name} (${Buffer.byteLength(stanza)} B): ${rate(readerMs)}/s (ltx Parser: ${rate(ltxMs)}/s)` +
      ` [median of ${RUNS} runs of ${SHAPE_MESSAGES}; ${(ltxMs / readerMs).toFixed(1)}x]`,
  )
}

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
