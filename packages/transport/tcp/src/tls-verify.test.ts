import { rootCertificates } from 'node:tls'
import { testCerts } from '@test/server'
import { describe, expect, test } from 'vitest'
import { tlsOptions, trustedCertificates } from './tls-verify.js'

describe('which CAs a connection trusts', () => {
  test('no option: node:tls gets no ca, so it uses its default roots', () => {
    const options = tlsOptions('example.com')
    expect(options.ca).toBeUndefined()
    expect(options.secureContext).toBeUndefined()
  })

  test('ca: these CAs only, in place of the default roots', () => {
    const options = tlsOptions('example.com', { ca: testCerts.ca })
    expect(options.ca).toBe(testCerts.ca)
    expect(options.secureContext).toBeUndefined()
  })

  test('extraCa: every default root and the extra CA, in one secure context reused', () => {
    const settings = { extraCa: testCerts.ca }
    const trusted = trustedCertificates(settings)
    expect(trusted).toEqual(expect.arrayContaining([...rootCertificates, testCerts.ca]))
    expect(trusted.length).toBeGreaterThanOrEqual(rootCertificates.length + 1)
    const first = tlsOptions('example.com', settings)
    expect(first.ca).toBeUndefined()
    expect(first.secureContext).toBeDefined()
    expect(tlsOptions('example.org', settings).secureContext).toBe(first.secureContext)
  })

  test('ca and extraCa: both lists, without the default roots', () => {
    const extra = [testCerts.selfSigned.cert]
    expect(trustedCertificates({ ca: testCerts.ca, extraCa: extra })).toEqual([
      testCerts.ca,
      testCerts.selfSigned.cert,
    ])
  })
})
