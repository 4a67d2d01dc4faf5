// The stanza shapes of the recv figure: what the server writes (the same bytes for every
// client), how an app would ask for them, and what the app reads from each. The reading code
// is shared: both libraries hand the app ltx elements, so the same calls cost the same, and
// what differs is only the library's own work (reading the stream, building the element,
// routing it).
//
//   chat       the original 261-byte chat message: plain text body
//   chat-rich  chat message with entity and character references and non-ASCII text in the
//              body, and namespaced extension children: a chat state (XEP-0085), a marker
//              request (XEP-0333), an origin-id (XEP-0359) and a receipt request (XEP-0184)
//   presence   MUC occupant presence with extension children: entity capabilities (XEP-0115),
//              a MUC user <x/> with an <item/> (XEP-0045 §7.2.2), a <delay/> (XEP-0203)
//   roster     iq result carrying a 20-item roster (RFC 6121 §2.1.4), one <group/> each
//   groupchat  groupchat message with <delay/> (XEP-0203) and <stanza-id/> (XEP-0359)
//
// `route` says how the app subscribes: a chat or groupchat message with a body, any presence,
// or an iq result nobody waits for (the server sends them unasked: no request is timed).
// `read(el)` returns what the app took from the stanza (a string, counted in bytes so that
// nothing is optimised away); it throws when something it expects is missing.

export const TO = 'bench@localhost/bench'

const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates'
const NS_CAPS = 'http://jabber.org/protocol/caps'
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user'
const NS_DELAY = 'urn:xmpp:delay'
const NS_SID = 'urn:xmpp:sid:0'
const NS_ROSTER = 'jabber:iq:roster'

const id = (i) => String(i).padStart(6, '0')
const need = (x, what) => {
  if (x === undefined || x === null) throw new Error(`bench: ${what} missing`)
  return x
}

const LOREM = 'lorem ipsum dolor sit amet '.repeat(10)
const SUBSCRIPTIONS = ['both', 'to', 'from', 'both', 'none']
const GROUPS = ['Friends', 'Work', 'Family', 'Band', 'Café']

export const SHAPES = {
  chat: {
    route: 'chat',
    build(i) {
      // Exactly 261 bytes, as in the first rounds of the bench.
      const head = `<message from='alice@localhost/phone' to='${TO}' type='chat' id='m${id(i)}'><body>`
      const tail = '</body></message>'
      return head + LOREM.slice(0, 261 - head.length - tail.length) + tail
    },
    read: (el) => need(el.getChildText('body'), 'body'),
  },

  'chat-rich': {
    route: 'chat',
    build(i) {
      return (
        `<message from='juliet@capulet.lit/balcony' to='${TO}' type='chat' id='c${id(i)}'>` +
        `<body>Meet me at &quot;The Globe&quot; &amp; bring the script &lt;Act ${i % 5}&gt; ` +
        `&#8212; it&apos;s at 3 o&apos;clock, caf&#xe9; after? Ça marche ✓</body>` +
        `<active xmlns='${NS_CHATSTATES}'/>` +
        `<markable xmlns='urn:xmpp:chat-markers:0'/>` +
        `<origin-id xmlns='${NS_SID}' id='a1b2c3d4-${id(i)}'/>` +
        `<request xmlns='urn:xmpp:receipts'/>` +
        '</message>'
      )
    },
    read(el) {
      const body = need(el.getChildText('body'), 'body')
      const state = need(el.getChildByAttr('xmlns', NS_CHATSTATES), 'chat state')
      return body + state.name
    },
  },

  presence: {
    route: 'presence',
    build(i) {
      return (
        `<presence from='coven@chat.shakespeare.lit/witch${i % 100}' to='${TO}' id='p${id(i)}'>` +
        `<c xmlns='${NS_CAPS}' hash='sha-1' node='https://conversations.im' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>` +
        `<x xmlns='${NS_MUC_USER}'><item affiliation='member' role='participant' jid='hag${i % 100}@shakespeare.lit/pda'/></x>` +
        `<delay xmlns='${NS_DELAY}' from='coven@chat.shakespeare.lit' stamp='2002-09-10T23:41:07Z'/>` +
        '</presence>'
      )
    },
    read(el) {
      const caps = need(el.getChild('c', NS_CAPS), 'caps')
      const item = need(el.getChild('x', NS_MUC_USER)?.getChild('item'), 'muc item')
      const delay = need(el.getChild('delay', NS_DELAY), 'delay')
      return caps.attrs.ver + item.attrs.role + delay.attrs.stamp
    },
  },

  roster: {
    route: 'iq-result',
    build(i) {
      let items = ''
      for (let k = 0; k < 20; k++) {
        items +=
          `<item jid='contact${k}@example.net' name='Contact ${k}' subscription='${SUBSCRIPTIONS[k % 5]}'>` +
          `<group>${GROUPS[k % 5]}</group></item>`
      }
      return `<iq type='result' id='r${id(i)}' to='${TO}'><query xmlns='${NS_ROSTER}' ver='ver${i}'>${items}</query></iq>`
    },
    read(el) {
      const items = need(el.getChild('query', NS_ROSTER), 'roster query').getChildren('item')
      if (items.length !== 20) throw new Error(`bench: ${items.length} roster items, not 20`)
      let jids = ''
      for (const item of items) jids += item.attrs.jid
      return jids
    },
  },

  groupchat: {
    route: 'groupchat',
    build(i) {
      return (
        `<message from='coven@chat.shakespeare.lit/secondwitch' to='${TO}' type='groupchat' id='g${id(i)}'>` +
        `<body>${LOREM.slice(0, 40 + (i % 40))}</body>` +
        `<delay xmlns='${NS_DELAY}' from='coven@chat.shakespeare.lit' stamp='2002-10-13T23:58:37Z'/>` +
        `<stanza-id xmlns='${NS_SID}' id='5f3dbc5e-${id(i)}' by='coven@chat.shakespeare.lit'/>` +
        '</message>'
      )
    },
    read(el) {
      const body = need(el.getChildText('body'), 'body')
      const delay = need(el.getChild('delay', NS_DELAY), 'delay')
      const sid = need(el.getChild('stanza-id', NS_SID), 'stanza-id')
      return body + delay.attrs.stamp + sid.attrs.id
    },
  },
}

export const SHAPE_NAMES = Object.keys(SHAPES)
