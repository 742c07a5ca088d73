/**
 * One category's typical message through the pipeline in a tight loop, for a CPU profile of the hot path:
 *   node --import tsx --cpu-prof --cpu-prof-dir=/tmp/veil-prof bench/profile.ts owntracks/location [count]
 * Prints ns per message. Streams: those of bench/messages.ts.
 */
import { typicalMessages } from './messages.ts'
import { benchPipeline } from './pipeline.ts'
import { tempDir } from '../test/helpers/gateway.ts'

const which = process.argv[2] ?? 'owntracks/location'
const count = Number(process.argv[3] ?? 100_000)
const message = typicalMessages().find((m) => m.stream === which)
if (message === undefined)
  throw new Error(
    `no typical message for ${which}; known: ${typicalMessages()
      .map((m) => m.stream)
      .join(', ')}`,
  )
const dir = tempDir('veil-bench-')
const { pipeline, close } = benchPipeline(dir.path)
let now = Date.UTC(2026, 1, 2, 3)
const started = process.hrtime.bigint()
for (let i = 0; i < count; i++) {
  now += 10_000
  await pipeline.process(message.topic, message.payload, now)
}
console.log(`${which}: ${(Number(process.hrtime.bigint() - started) / count).toFixed(0)} ns per message`)
await close()
dir.remove()
