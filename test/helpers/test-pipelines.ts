import { afterEach } from 'vitest'
import { testPipeline, type TestPipeline } from '../../filters/profiles/sparkplug/testing.ts'

/**
 * A testPipeline factory for one test file: every pipeline it makes is closed (its data directory removed) after
 * each test. Kept out of testing.ts, which the benchmarks import outside vitest.
 */
export function pipelinesClosedAfterEach(): (options?: Parameters<typeof testPipeline>[0]) => TestPipeline {
  let open: TestPipeline[] = []
  afterEach(() => {
    for (const p of open) p.close()
    open = []
  })
  return (options = {}) => {
    const p = testPipeline(options)
    open.push(p)
    return p
  }
}
