import { bench, describe } from 'vitest'
import { Keyring } from '../../../gateway/src/keys/keyring.ts'
import { compileEnv, opContext } from '../testing.ts'
import hmacPseudo from './index.ts'

const keyring = new Keyring(Buffer.alloc(32, 1), new Map([['ana', { epochSeconds: 30 * 86_400 }]]))
const env = compileEnv({ category: 'camera', domain: 'ana', keyring })
const ctx = opContext({ category: 'camera', domain: 'ana', keyring })
const fn = hmacPseudo.compile({ paths: ['after.camera'] }, env)
let i = 0

describe('hmac_pseudo', () => {
  bench('Frigate camera name (memoised: the same camera again)', () => {
    fn({ after: { camera: 'front_door', label: 'person' } }, ctx)
  })
  bench('a new id every call (HMAC computed; memo cleared every 10^4 ids)', () => {
    fn({ after: { camera: `cam-${i++}`, label: 'person' } }, ctx)
  })
})
