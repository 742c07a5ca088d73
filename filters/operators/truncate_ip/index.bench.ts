import { bench, describe } from 'vitest'
import { compileEnv, opContext } from '../testing.ts'
import truncateIp from './index.ts'

const env = compileEnv({ category: 'robot_vacuum' })
const ctx = opContext({ category: 'robot_vacuum' })
const one = truncateIp.compile({ paths: ['StatusNET.IPAddress'] }, env)
const list = truncateIp.compile({ paths: ['$'] }, env)

describe('truncate_ip', () => {
  bench('Tasmota StatusNET.IPAddress (IPv4)', () => {
    one({ StatusNET: { IPAddress: '192.168.178.37' } }, ctx)
  })
  bench('Valetudo ips (IPv4 + IPv6 list)', () => {
    list('10.203.7.9,fe80::c811:a7ff:fe03:1', ctx)
  })
})
