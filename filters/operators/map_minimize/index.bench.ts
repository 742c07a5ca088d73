import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { bench, describe } from 'vitest'
import { compileAllowlist } from '../../../gateway/src/policy/allow/index.ts'
import { compileEnv, compileOperator, opContext } from '../testing.ts'
import mapMinimize from './index.ts'

const FIXTURES = join(import.meta.dirname, '../../../test/fixtures/valetudo')
const allow = compileAllowlist([
  'pixelSize',
  'layers[].type',
  'layers[].metaData.area',
  'layers[].dimensions.pixelCount',
  'layers[].compressedPixels',
  'layers[].pixels',
])
const load = (file: string): unknown => JSON.parse(readFileSync(join(FIXTURES, file), 'utf8'))
const typical = load('dreame_z10_1056_paths.json')
const giant = load('dreame_l10su_3031_giant.json')
const typicalAllowed = allow(typical)
const giantAllowed = allow(giant)
// Only the runs: the operator has to add up compressedPixels.
const runsOnly = compileAllowlist(['pixelSize', 'layers[].type', 'layers[].compressedPixels'])(giant)

const run = compileOperator(mapMinimize, {}, compileEnv({ category: 'robot_vacuum' }))
const ctx = opContext({ category: 'robot_vacuum' })

describe('map_minimize', () => {
  bench('typical map (dreame_z10, 9 layers), after allowlist', () => {
    run(typicalAllowed, ctx)
  })
  bench('giant map (dreame_l10su_3031, 19 layers), after allowlist', () => {
    run(giantAllowed, ctx)
  })
  bench('giant map, area summed from compressedPixels', () => {
    run(runsOnly, ctx)
  })
  bench('giant map: allowlist + map_minimize', () => {
    run(allow(giant), ctx)
  })
})
