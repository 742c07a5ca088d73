import { typicalMessages } from './bench/messages.ts'
import { benchPipeline } from './bench/pipeline.ts'
import { tempDir } from './test/helpers/gateway.ts'
const which = process.argv[2] ?? 'valetudo/battery_level'
const m = typicalMessages().find((x) => x.stream === which)!
const dir = tempDir()
const { pipeline, close } = benchPipeline(dir.path)
let now = Date.UTC(2026, 1, 2, 3)
const t = process.hrtime.bigint()
for (let i = 0; i < 100000; i++) { now += 10000; await pipeline.process(m.topic, m.payload, now) }
console.log(which, Number(process.hrtime.bigint() - t) / 100000, 'ns/msg')
await close(); dir.remove()
