import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { deflateSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/gateway.ts'
import { longestBlockMs } from '../../bench/map.ts'
import { builtinPipeline } from '../helpers/pipeline.ts'

describe('event loop', () => {
  it('the largest Valetudo map (639 kB of JSON) never blocks the loop for 50 ms', async () => {
    const dir = tempDir()
    try {
      const { pipeline } = builtinPipeline({ master: Buffer.alloc(32, 1), dataDir: dir.path })
      const map = deflateSync(
        readFileSync(join(import.meta.dirname, '../fixtures/valetudo/dreame_l10su_3031_giant.json')),
      )
      const topic = 'valetudo/robot/MapData/map-data'
      await pipeline.process(topic, map) // warm up the JIT so the figure is the steady state
      const samples: number[] = []
      for (let i = 0; i < 5; i++) {
        let outputs = 0
        samples.push(
          await longestBlockMs(async () => {
            outputs = (await pipeline.process(topic, map)).outputs.length
          }),
        )
        // No map leaves any more (robot_vacuum.yaml): the map is still inflated, parsed and validated before the
        // filter stage refuses it, which is the work this test bounds.
        expect(outputs).toBe(0)
      }
      samples.sort((a, b) => a - b)
      console.info(`longest event-loop block per run (ms): ${samples.map((s) => s.toFixed(1)).join(', ')}`)
      // The median of five runs: one unlucky scheduling pause on a loaded CI machine is not the pipeline's.
      expect(samples[2]).toBeLessThan(50)
    } finally {
      dir.remove()
    }
  })
})
