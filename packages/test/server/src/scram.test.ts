import { describe, expect, it } from 'vitest'
import { saslprep } from './saslprep.js'
import { deriveScramCredentials, type ScramHash, ScramServerExchange } from './scram.js'

// Test vectors: RFC 5802 §5 (SCRAM-SHA-1) and RFC 7677 §3 (SCRAM-SHA-256), user 'user',
// password 'pencil'.
const VECTORS: {
  hash: ScramHash
  salt: string
  clientFirst: string
  serverNonce: string
  serverFirst: string
  clientFinal: string
  serverFinal: string
}[] = [
  {
    hash: 'sha1',
    salt: 'QSXCR+Q6sek8bf92',
    clientFirst: 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL',
    serverNonce: '3rfcNHYJY1ZVvWVs7j',
    serverFirst: 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096',
    clientFinal:
      'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
    serverFinal: 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=',
  },
  {
    hash: 'sha256',
    salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
    clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
    serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
    serverFirst:
      'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
    clientFinal:
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
  },
]

function exchange(v: (typeof VECTORS)[number], password = 'pencil'): ScramServerExchange {
  const creds = deriveScramCredentials(password, v.hash, 4096, Buffer.from(v.salt, 'base64'))
  return new ScramServerExchange(v.hash, {
    lookup: (name) => (name === 'user' ? creds : undefined),
    serverNonce: v.serverNonce,
    iterations: 4096,
  })
}

describe('ScramServerExchange', () => {
  for (const v of VECTORS) {
    it(`reproduces the RFC exchange for ${v.hash}`, () => {
      const x = exchange(v)
      expect(x.first(v.clientFirst)).toEqual({ kind: 'challenge', data: v.serverFirst })
      const final = x.final(v.clientFinal)
      expect(final).toMatchObject({ kind: 'success', username: 'user', data: v.serverFinal })
    })

    it(`refuses a wrong proof for ${v.hash}`, () => {
      const x = exchange(v, 'pencil2')
      x.first(v.clientFirst)
      expect(x.final(v.clientFinal)).toMatchObject({ kind: 'failure', condition: 'not-authorized' })
    })
  }

  const v = VECTORS[0]!

  it('refuses a replayed nonce, a wrong channel binding and an unknown user', () => {
    let x = exchange(v)
    x.first(v.clientFirst)
    expect(x.final(v.clientFinal.replace('3rfc', '3rfd'))).toMatchObject({
      condition: 'not-authorized',
    })
    x = exchange(v)
    x.first(v.clientFirst)
    expect(x.final(v.clientFinal.replace('c=biws', 'c=eSws'))).toMatchObject({
      condition: 'not-authorized',
    })
    x = exchange(v)
    const first = x.first('n,,n=nobody,r=abc')
    expect(first.kind).toBe('challenge') // an unknown user fails only at the end
    expect(x.final(v.clientFinal)).toMatchObject({ kind: 'failure', condition: 'not-authorized' })
  })

  it('rejects malformed messages', () => {
    for (const bad of [
      'n,n=user,r=x', // no authzid field
      'x,,n=user,r=x', // bad flag
      'n,,m=ext,n=user,r=x', // mandatory extension
      'n,,n=us=41er,r=x', // bad saslname escape
      'n,,r=x', // no user name
      'n,,n=user,r=a,b', // ',' cannot be in a nonce
    ]) {
      expect(exchange(v).first(bad), bad).toMatchObject({ kind: 'failure' })
    }
    expect(exchange(v).first('p=tls-unique,,n=user,r=x')).toMatchObject({
      condition: 'not-authorized',
    })
    const x = exchange(v)
    x.first(v.clientFirst)
    expect(x.final('c=biws,r=x')).toMatchObject({ condition: 'malformed-request' })
    expect(x.final(v.clientFinal)).toMatchObject({ condition: 'malformed-request' }) // only once
  })

  it('decodes =2C and =3D in user names', () => {
    const creds = deriveScramCredentials('pw', 'sha1', 1)
    const seen: string[] = []
    const x = new ScramServerExchange('sha1', {
      lookup: (name) => {
        seen.push(name)
        return creds
      },
      iterations: 1,
    })
    x.first('n,,n=a=2Cb=3Dc,r=x')
    expect(seen).toEqual(['a,b=c'])
  })
})

describe('saslprep', () => {
  it('maps non-ASCII spaces and soft hyphens, then NFKC (RFC 4013 §3 examples)', () => {
    expect(saslprep('I\u00adX')).toBe('IX')
    expect(saslprep('user')).toBe('user')
    expect(saslprep('\u00aa')).toBe('a')
    expect(saslprep('\u2168')).toBe('IX')
    expect(saslprep('a\u00a0b')).toBe('a b')
  })
})
